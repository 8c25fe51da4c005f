"""RefConv: re-parameterised refocusing convolution (Cai and Ding, 2023).

"RefConv: Re-parameterized Refocusing Convolution for Powerful ConvNets",
arXiv:2310.10563 (IEEE TNNLS 2025); official code github.com/Aiolus-X/RefConv.
The conv kernel is a trainable *refocusing transformation* of a frozen basis
kernel ``W_b`` (normally inherited from a pretrained model)::

    W_t = W_b + T(W_b)

``T`` is a conv over the stack of basis kernels, with map size ``map_size``
and ``map_groups`` (the paper's ``G``) groups: :mod:`.ref_conv_ops`.

``weight`` is the frozen basis, a *buffer* under the key ``weight``: a plain
conv's pretrained ``weight`` loads into it, it never gets a gradient and,
not being a parameter, never reaches the optimizer (without a
``paramwise_cfg``, mmengine's ``DefaultOptimWrapperConstructor`` hands
``model.parameters()``, frozen ones included, to the optimizer).
``refocus_weight`` (and ``bias``) are trained.

Init of the map, two settings:

* ``zero_init_refocus=False``: PyTorch's default conv init of the map
  (``kaiming_uniform_(a=sqrt(5))``), as the official ``RepConv``'s
  ``convmap`` (an ``nn.Conv2d`` whose ``nn.init.zeros_`` is commented out).
  The paper's ablation finds that zero init of the refocusing weights works
  too, but standard random init works best; the paper configs
  (``configs/refconv/*``) use it. ``W_t != W_b`` at start: the model begins
  at the pretrained basis refocused by a random map, not at the pretrained
  network.
* ``zero_init_refocus=True`` (the layer's default): the map starts at zero,
  so ``W_t == W_b`` and a RefConv built from a pretrained conv computes
  exactly that conv at step 0. It stays the default because the plugin's
  contract rests on it: ``from_conv`` and the model-wide ``conv_swap`` are
  exact, a plain checkpoint loaded into a RefConv model (``load_from``,
  ``tools/convert_pretrained.py``) computes the plain network, and the
  checkpoint key check may leave ``refocus_weight`` unfilled because its
  init is the exact-equivalence one. Choose it for step-0 equality.

1x1 kernels are kept as plain convs with a trainable ``weight`` parameter:
a refocusing map over a single tap only rescales it, and the paper refocuses
spatial kernels. For kernels narrower than 3 in one direction (e.g. (1, 3))
the default map shrinks to fit; an explicit ``map_size`` larger than the
kernel, or even, is refused. ``refocus_weight`` is the layer's new tensor
(:meth:`~mmconvplug.convs.base.ConvVariantMixin.new_tensor_names`).

Computation: ``W_t`` is composed in the parameters' dtype with autocast off
(``F.conv2d`` on the input then follows autocast); outside training it is
cached (:class:`~mmconvplug.convs.kernel_cache.KernelCache`), and
:meth:`fold` returns the plain conv with kernel ``W_t``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmconvplug.registry import MODELS
from mmconvplug.utils.torch_helpers import full_precision

from .attributes import IntOrPair
from .base import FoldableConvMixin
from .from_conv import adopt_plain_conv, plain_conv_geometry
from .kernel_cache import KernelCache
from .ref_conv_ops import refocus_kernel, refocus_map_groups, refocus_map_size

__all__ = ['RefConv', 'refocus_kernel']

@MODELS.register_module()
class RefConv(FoldableConvMixin, nn.Module):
    """Refocusing conv over a frozen basis; a drop-in for ``nn.Conv2d``.

    Input (N, C_in, H, W) -> output (N, C_out, H_out, W_out), sizes as for
    ``nn.Conv2d``.

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        kernel_size (int | tuple[int, int]): Kernel size (kh, kw).
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of the conv. Defaults to 1.
        bias (bool): Learn a (trainable) bias of shape (C_out,). Defaults
            to True.
        map_size (int | tuple[int, int], optional): Size of the refocusing
            map, odd, at most the kernel size. Ignored for 1x1 kernels.
            Defaults to None: 3 (the paper's), shrunk to the largest odd
            size that fits each kernel side.
        map_groups (int, optional): ``G``, the groups of the refocusing
            map; must divide N = C_out * C_in / groups. Defaults to None:
            C_in * C_out / groups**2, as in the official code.
        zero_init_refocus (bool): Start the map at zero, so ``W_t == W_b``
            (exactly the basis conv at step 0); False: PyTorch's default
            conv init, as the official code and the paper's best setting
            (the paper configs). Defaults to True (see the module
            docstring for why).

    Raises:
        ValueError: an even or too large ``map_size``, a ``map_groups``
            that does not divide N, a bad geometry.

    Example:
        >>> import torch
        >>> from mmcv.cnn import build_conv_layer
        >>> conv = build_conv_layer(dict(type='RefConv'), 8, 16, 3,
        ...                         padding=1)
        >>> conv(torch.randn(2, 8, 12, 12)).shape
        torch.Size([2, 16, 12, 12])
        >>> [name for name, _ in conv.named_parameters()]
        ['refocus_weight', 'bias']
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
                 map_size: Optional[IntOrPair] = None,
                 map_groups: Optional[int] = None,
                 zero_init_refocus: bool = True) -> None:
        super().__init__()
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        kernel_shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.refocusing = self.kernel_size != (1, 1)
        self.zero_init_refocus = bool(zero_init_refocus)
        self.num_kernels = kernel_shape[0] * kernel_shape[1]
        if self.refocusing:
            self.map_size = refocus_map_size(self.kernel_size, map_size)
            self.map_groups = refocus_map_groups(self.num_kernels,
                                                 self.groups, map_groups)
            self.register_buffer('weight', torch.empty(kernel_shape))
            self.refocus_weight = nn.Parameter(
                torch.empty(self.num_kernels,
                            self.num_kernels // self.map_groups,
                            *self.map_size))
        else:
            self.map_size = self.map_groups = None
            self.weight = nn.Parameter(torch.empty(kernel_shape))
            self.register_parameter('refocus_weight', None)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.kernel_cache = KernelCache()
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Basis: mmcv's plain-conv ``kaiming_init``; map: zero or default.

        The basis gets what ``ConvModule`` and ResNet's ``init_cfg`` give a
        plain ``Conv2d`` (normal, fan_out, ReLU), the bias 0. The map is zero
        with ``zero_init_refocus``, else PyTorch's default conv init (as in
        the official code). Load a pretrained ``weight`` afterwards (e.g.
        ``init_cfg=dict(type='Pretrained', ...)``) for the paper's setting.
        """
        nn.init.kaiming_normal_(
            self.weight, mode='fan_out', nonlinearity='relu')
        if self.refocus_weight is not None:
            if self.zero_init_refocus:
                self.refocus_weight.zero_()
            else:
                nn.init.kaiming_uniform_(self.refocus_weight, a=5**0.5)
        if self.bias is not None:
            self.bias.zero_()

    # ------------------------------------------------------------- maths
    def kernel_sources(self) -> Tuple[torch.Tensor, ...]:
        """Every tensor the kernel is composed from (the cache's key)."""
        if self.refocus_weight is None:
            return (self.weight, )
        return (self.weight, self.refocus_weight)

    def compose_kernel(self) -> torch.Tensor:
        """``W_t``, shape (C_out, C_in / groups, kh, kw)."""
        if not self.refocusing:
            return self.weight
        return refocus_kernel(self.weight, self.refocus_weight,
                              self.map_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel_cache.get(self.compose_kernel,
                                       self.kernel_sources(), self.training)
        return F.conv2d(x, kernel, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    # -------------------------------------------------------------- fold
    @property
    def folds_to_source(self) -> bool:
        """Whether :meth:`fold` gives back the basis conv (a zero map or a
        1x1 kernel); the conv swap keeps the plain conv to re-initialise a
        RefConv for which it does not."""
        return (self.refocus_weight is None
                or not bool(torch.count_nonzero(self.refocus_weight)))

    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``W_t`` and the bias, detached copies."""
        with torch.no_grad(), full_precision():
            weight = self.compose_kernel().detach().clone()
            bias = None if self.bias is None else self.bias.detach().clone()
        return weight, bias

    # --------------------------------------------------------- from_conv
    @classmethod
    def from_conv(cls,
                  conv: nn.Conv2d,
                  map_size: Optional[IntOrPair] = None,
                  map_groups: Optional[int] = None,
                  zero_init_refocus: bool = True) -> 'RefConv':
        """Build a RefConv whose frozen basis is ``conv``'s weight.

        By default the map starts at zero, so the result computes exactly
        ``conv``; the bias is copied and stays trainable. The result is marked
        initialised, so mmengine's ``init_weights`` leaves it alone.

        Args:
            conv (nn.Conv2d): A plain conv with zero padding.
            map_size (int | tuple[int, int], optional): As for the
                constructor. Defaults to None.
            map_groups (int, optional): As for the constructor. Defaults
                to None.
            zero_init_refocus (bool): True: the exact equivalent of
                ``conv``. False: the official random map (PyTorch's default
                conv init), the paper's best setting, which the RefConv
                paper configs pass through ``conv_swap``; the result then
                computes ``conv``'s kernel refocused by that map, not
                ``conv``. Defaults to True. An init choice, so not in
                :meth:`from_conv_kwargs`.

        Returns:
            RefConv: on ``conv``'s device and dtype, in its training mode.
        """
        geometry = plain_conv_geometry(conv, 'RefConv.from_conv')
        return adopt_plain_conv(
            cls(**geometry, map_size=map_size, map_groups=map_groups,
                zero_init_refocus=zero_init_refocus), conv)

    def from_conv_kwargs(self) -> dict:
        """``from_conv`` arguments that rebuild this layer's map."""
        return dict(map_size=self.map_size, map_groups=self.map_groups)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.refocusing:
            s += f', map_size={self.map_size}, map_groups={self.map_groups}'
        if self.bias is None:
            s += ', bias=False'
        return s
