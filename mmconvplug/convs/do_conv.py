"""DO-Conv: depthwise over-parameterised convolution (Cao et al., 2020).

"DO-Conv: Depthwise Over-parameterized Convolutional Layer", IEEE TIP 2022
(arXiv:2006.12030; official code github.com/yangyanli/DO-Conv). A k x k
conv kernel is written as the composition of a conventional kernel ``W``
(C_out, C_in / groups, D_mul) and a depthwise kernel ``D`` (C_in, k*k,
D_mul), one (k*k x D_mul) matrix per *input channel*::

    kernel[o, c, s] = sum_d D[c_in(o, c), s, d] * W[o, c, d]
    y = conv(x, kernel) + bias

where ``c_in(o, c)`` is the input channel that slot ``c`` of output ``o``
reads (its group's offset plus ``c``). ``D = I + D_delta`` with ``D_delta``
zero-initialised and ``I`` the rectangular (k*k x D_mul) identity, so at
step 0 the layer computes exactly the conv with kernel ``W[..., :k*k]``;
this needs ``D_mul >= k*k``. The same formula covers DO-Conv (groups=1),
DO-GConv (1 < groups < C_in) and DO-DConv (groups = C_in, any depth
multiplier C_out / C_in). The paper also gives the equivalent "feature
composition" (``D`` applied to the input patches, then ``W``); composing
the kernel is cheaper whenever the feature map has more positions than the
layer has output channels, i.e. almost always.

Storage: ``weight`` holds the first k*k slots of ``W`` in the plain conv's
layout (C_out, C_in / groups, kh, kw), so a pretrained ``nn.Conv2d`` weight
loads into a DOConv unchanged and the layer then computes that conv;
``weight_extra`` (C_out, C_in / groups, D_mul - k*k) holds the remaining
slots when ``D_mul > k*k``; ``D_delta`` (C_in, k*k, D_mul) is the trainable
deviation from the identity. ``D_delta`` and ``weight_extra`` are the
layer's new tensors (:meth:`~mmconvplug.convs.base.ConvVariantMixin.
new_tensor_names`). 1x1 kernels have nothing to over-parameterise (``D``
would be a scalar per channel, absorbed by ``W``): they hold only
``weight`` and behave as a plain conv.

Computation: the composition is one batched matrix product over input
channels with a hand-written backward
(:func:`~mmconvplug.convs.do_conv_ops.compose_do_kernel`). It runs in the
parameters' dtype with autocast off (``F.conv2d`` then follows
autocast), outside training the kernel is cached
(:class:`~mmconvplug.convs.kernel_cache.KernelCache`), and :meth:`fold`
returns the plain conv with that kernel.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmconvplug.registry import MODELS
from mmconvplug.utils.arg_checks import check_positive_int
from mmconvplug.utils.torch_helpers import full_precision

from .attributes import IntOrPair
from .base import FoldableConvMixin
from .do_conv_ops import compose_do_kernel
from .from_conv import adopt_plain_conv, plain_conv_geometry
from .kernel_cache import KernelCache

__all__ = ['DOConv', 'compose_do_kernel']


@MODELS.register_module()
class DOConv(FoldableConvMixin, nn.Module):
    """Depthwise over-parameterised conv; a drop-in for ``nn.Conv2d``.

    Input (N, C_in, H, W) -> output (N, C_out, H_out, W_out), sizes as for
    ``nn.Conv2d``.

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        kernel_size (int | tuple[int, int]): Kernel size (kh, kw).
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups; must divide C_in and C_out (groups = C_in is
            DO-DConv). Defaults to 1.
        bias (bool): Learn a bias of shape (C_out,). Defaults to True.
        D_mul (int, optional): Depth multiplier of ``D``, the number of
            slots of ``W`` per input channel; must be ``>= kh*kw`` so ``D``
            can start as the identity. Ignored for 1x1 kernels (no ``D``).
            Defaults to None, meaning kh*kw (the paper's default).

    Raises:
        ValueError: ``D_mul < kh*kw``, a bad geometry, or string padding.

    Example:
        >>> import torch
        >>> from mmcv.cnn import build_conv_layer
        >>> conv = build_conv_layer(dict(type='DOConv'), 8, 16, 3,
        ...                         padding=1, bias=False)
        >>> conv(torch.randn(2, 8, 12, 12)).shape
        torch.Size([2, 16, 12, 12])
        >>> plain = conv.eval().fold()   # an nn.Conv2d, same outputs
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 D_mul: Optional[int] = None) -> None:
        super().__init__()
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        kh, kw = self.kernel_size
        taps = kh * kw
        self.over_parameterised = taps > 1
        self.D_mul = self._check_d_mul(D_mul, taps)
        channels_per_group = in_channels // groups
        self.weight = nn.Parameter(
            torch.empty(out_channels, channels_per_group, kh, kw))
        if self.over_parameterised and self.D_mul > taps:
            self.weight_extra = nn.Parameter(
                torch.empty(out_channels, channels_per_group,
                            self.D_mul - taps))
        else:
            self.register_parameter('weight_extra', None)
        if self.over_parameterised:
            self.D_delta = nn.Parameter(
                torch.empty(in_channels, taps, self.D_mul))
        else:
            self.register_parameter('D_delta', None)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.kernel_cache = KernelCache()
        self.init_weights()

    def _check_d_mul(self, d_mul: Optional[int], taps: int) -> int:
        if d_mul is None:
            return taps
        check_positive_int(d_mul, 'D_mul', 'DOConv', hint='use None for k*k')
        if self.over_parameterised and d_mul < taps:
            raise ValueError(
                f'DOConv: D_mul={d_mul} is smaller than kh*kw={taps} for '
                f'kernel_size={self.kernel_size}; D could not start as the '
                f'identity, so the layer would not compute its conv at step '
                f'0. Use D_mul >= {taps}, or D_mul=None for k*k per layer.')
        return d_mul

    @torch.no_grad()
    def init_weights(self) -> None:
        """Initialise like mmcv initialises a plain conv; ``D`` = identity.

        The composed kernel starts as ``weight``, which gets mmcv's
        ``kaiming_init`` (normal, fan_out, ReLU) that ``ConvModule`` and
        ResNet's ``init_cfg`` give a plain ``Conv2d``; ``weight_extra`` gets
        the same distribution, the bias 0 and ``D_delta`` 0. ``ConvModule``
        sees this method and leaves the layer to it.
        """
        nn.init.kaiming_normal_(
            self.weight, mode='fan_out', nonlinearity='relu')
        if self.weight_extra is not None:
            fan_out = self.out_channels * self.kernel_size[0] * \
                self.kernel_size[1]
            self.weight_extra.normal_(0, math.sqrt(2.0 / fan_out))
        if self.D_delta is not None:
            self.D_delta.zero_()
        if self.bias is not None:
            self.bias.zero_()

    # ------------------------------------------------------------- maths
    def kernel_sources(self) -> Tuple[torch.Tensor, ...]:
        """Every tensor the kernel is composed from (the cache's key)."""
        return tuple(t for t in (self.weight, self.weight_extra, self.D_delta)
                     if t is not None)

    def compose_kernel(self) -> torch.Tensor:
        """The conv kernel ``D o W``, shape (C_out, C_in / groups, kh, kw)."""
        if not self.over_parameterised:
            return self.weight
        out_channels, channels_per_group, kh, kw = self.weight.shape
        weight = self.weight.reshape(out_channels, channels_per_group,
                                     kh * kw)
        if self.weight_extra is not None:
            weight = torch.cat([weight, self.weight_extra], dim=2)
        identity = torch.eye(
            kh * kw, self.D_mul, dtype=self.D_delta.dtype,
            device=self.D_delta.device)
        kernel = compose_do_kernel(weight, self.D_delta + identity,
                                   self.groups)
        return kernel.reshape(self.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel_cache.get(self.compose_kernel,
                                       self.kernel_sources(), self.training)
        return F.conv2d(x, kernel, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    # -------------------------------------------------------------- fold
    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The composed kernel and the bias, detached copies."""
        with torch.no_grad(), full_precision():
            weight = self.compose_kernel().detach().clone()
            bias = None if self.bias is None else self.bias.detach().clone()
        return weight, bias

    # --------------------------------------------------------- from_conv
    @classmethod
    def from_conv(cls,
                  conv: nn.Conv2d,
                  D_mul: Optional[int] = None) -> 'DOConv':
        """Build a DOConv computing exactly ``conv`` (e.g. a trained one).

        ``weight`` and ``bias`` are copied, ``D`` starts as the identity and
        ``weight_extra`` (if ``D_mul > k*k``) gets the init distribution; it
        only contributes once ``D_delta`` moves away from zero. The result is
        marked initialised, so mmengine's ``init_weights`` leaves it alone.

        Args:
            conv (nn.Conv2d): A plain conv with zero padding.
            D_mul (int, optional): As for the constructor. Defaults to None.

        Returns:
            DOConv: on ``conv``'s device and dtype, in its training mode.
        """
        geometry = plain_conv_geometry(conv, 'DOConv.from_conv')
        return adopt_plain_conv(cls(**geometry, D_mul=D_mul), conv)

    def from_conv_kwargs(self) -> dict:
        """``from_conv`` arguments that rebuild this layer's ``D_mul``."""
        return dict(D_mul=self.D_mul)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.over_parameterised:
            s += f', D_mul={self.D_mul}'
        if self.bias is None:
            s += ', bias=False'
        return s
