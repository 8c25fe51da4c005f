"""CondConv: a convolution whose kernel is a per-example mix of experts.

Yang et al., "CondConv: Conditionally Parameterized Convolutions for
Efficient Inference", NeurIPS 2019 (arXiv:1904.04971); reference
implementation: timm's ``layers/cond_conv2d.py``.

For an input ``x`` the layer computes ``conv(x, sum_e r_e(x) W_e) +
sum_e r_e(x) b_e`` with ``num_experts`` kernels ``W_e`` (and biases ``b_e``)
and the routing weights ``r(x) = sigmoid(GAP(x) R + c)``, one linear layer
``(R, c)`` per CondConv layer. The kernel depends on the input, so no single
plain conv computes the same function: CondConv does not fold. Its state
dict (expert stack ``weight`` (E, C_out, C_in / groups, kh, kw), ``bias``
(E, C_out), ``routing.*``) holds nothing a plain conv checkpoint can fill
directly; :meth:`CondConv.from_conv` builds one from a plain conv exactly.

Two exact paths compute the batch from the per-example kernels (the
``strategy``; :mod:`.cond_conv_ops`): ``grouped``, timm's formulation (one
grouped conv with a group per example), and ``unfold``, one batched matmul
over the unfolded input, batch-size agnostic. ``strategy='auto'`` applies
the rule of :meth:`CondConv.choose_strategy`. While tracing or exporting
(ONNX, ``torch.export``) the batch size must not enter the graph, so
``grouped`` (its group count) is replaced by ``unfold``, which gives the
same result; ``torch.compile`` keeps the rule (its graphs are guarded on
the batch size, a new one recompiles). So it is on
an empty batch (``(0, C, H, W)``, e.g. a mask head meeting no positive RoI),
where a conv with zero groups does not exist: the layer then returns the
empty output and, after a backward, zero gradients, as ``nn.Conv2d`` does.
The former ``per_example`` and ``mix_outputs`` strategies are benchmark
baselines now (:mod:`mmconvplug.benchmarks.baselines`); their names raise.

Both paths are made of ops in ONNX opset 11 (``MatMul``, ``Conv``,
``Reshape``, ...; no ``Einsum``), so the layer exports at opset 11 and up.
"""
import math
from typing import Optional, Tuple

import torch
from torch import nn

from ..registry import MODELS
from ..utils.arg_checks import check_int
from .attributes import IntOrPair
from .base import NonFoldableConvMixin
from .cond_conv_ops import (
    COND_CONV_STRATEGIES,
    check_strategy,
    choose_strategy,
    cond_conv_grouped,
    cond_conv_unfold,
    conv_output_size,
    mix_experts,
)
from .from_conv import adopt_conv_trainability, plain_conv_geometry

__all__ = ['CondConv', 'COND_CONV_STRATEGIES', 'cond_conv_grouped',
           'cond_conv_unfold']


@MODELS.register_module()
class CondConv(NonFoldableConvMixin, nn.Module):
    """Conditionally parameterized conv, a drop-in for ``nn.Conv2d``.

    Input (N, C_in, H, W) -> output (N, C_out, H_out, W_out), sizes as for
    ``nn.Conv2d``; every expert has the conv's geometry.

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        kernel_size (int | tuple[int, int]): Kernel size (kh, kw).
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of every expert. Defaults to 1.
        bias (bool): One bias (C_out,) per expert, mixed like the kernels.
            Defaults to True.
        num_experts (int): Number of expert kernels ``E`` (the paper uses
            4 to 32). Defaults to 4.
        strategy (str): How the batch is computed, one of
            :data:`COND_CONV_STRATEGIES` (see the module docstring); all
            give the same result. Defaults to ``'auto'``.
        padding_mode (str): Only ``'zeros'``. Defaults to ``'zeros'``.

    Raises:
        ValueError: ``num_experts < 1``, an unknown strategy, another
            padding mode, a bad geometry.

    Each expert is initialised as ``nn.Conv2d`` initialises its kernel
    (kaiming-uniform with ``a = sqrt(5)``) and the routing layer as
    ``nn.Linear`` does; :meth:`init_weights` re-applies that, and
    ``ConvModule`` leaves a conv with an ``init_weights`` method alone.

    Example:
        >>> import torch
        >>> from mmcv.cnn import build_conv_layer
        >>> conv = build_conv_layer(dict(type='CondConv', num_experts=4),
        ...                         8, 16, 3, padding=1)
        >>> conv(torch.randn(2, 8, 12, 12)).shape
        torch.Size([2, 16, 12, 12])
        >>> conv.routing_weights(torch.randn(2, 8, 12, 12)).shape
        torch.Size([2, 4])
    """

    fold_unsupported_reason = (
        'its kernel sum_e r_e(x) W_e depends on the input x through the '
        'routing weights, so no fixed kernel reproduces it; keep CondConv '
        'at deployment (it traces and exports to ONNX), or train with a '
        'foldable variant (DOConv, RefConv).')

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 num_experts: int = 4,
                 strategy: str = 'auto',
                 padding_mode: str = 'zeros') -> None:
        super().__init__()
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        check_int(num_experts, 'num_experts', 'CondConv', low=1,
                  hint='the paper uses 4 to 32')
        check_strategy(strategy)
        if padding_mode != 'zeros':
            raise ValueError(
                f'CondConv: padding_mode={padding_mode!r} is not supported; '
                'only "zeros" is. Pad the input yourself (or let ConvModule '
                'add a padding layer) and pass padding=0.')
        self.num_experts = num_experts
        self.strategy, self.padding_mode = strategy, padding_mode
        expert_shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = nn.Parameter(torch.empty(num_experts, *expert_shape))
        self.bias = nn.Parameter(torch.empty(num_experts,
                                             out_channels)) if bias else None
        self.routing = nn.Linear(in_channels, num_experts)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialise each expert as ``nn.Conv2d`` would, routing as Linear."""
        for expert in self.weight:
            nn.init.kaiming_uniform_(expert, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0][0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        self.routing.reset_parameters()

    def init_weights(self) -> None:
        """mmengine/ConvModule hook: same initialisation as at construction.

        Without it ``ConvModule`` would run ``kaiming_init`` on ``weight`` as
        if it were one 4-d kernel, giving the wrong fan for a 5-d stack.
        """
        self.reset_parameters()

    # ------------------------------------------------------------- maths
    def routing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``r(x) = sigmoid(GAP(x) R + c)``, shape ``(N, num_experts)``.

        GAP is a sum scaled afterwards: the backward of ``mean`` would
        materialise a full-size ``grad / (H W)`` tensor, a pass over the
        input as costly as a 1x1 conv's; a sum's backward is a broadcast.
        """
        pooled = x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])
        return torch.sigmoid(self.routing(pooled))

    def mixed_kernels(
        self, routing: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Per-example kernels ``(N, C_out, C_in / groups, kh, kw)`` and
        biases ``(N, C_out)`` (or None): ``sum_e r_e W_e``, ``sum_e r_e b_e``.
        """
        kernels = mix_experts(routing, self.weight.flatten(1)).view(
            -1, *self.weight.shape[1:])
        bias = routing @ self.bias if self.bias is not None else None
        return kernels, bias

    def choose_strategy(self, x: torch.Tensor) -> str:
        """The path ``self.strategy`` takes for input ``x``: the rule
        :func:`~mmconvplug.convs.cond_conv_ops.choose_strategy`."""
        out_h, out_w = conv_output_size(x.shape[2:], self.kernel_size,
                                        self.stride, self.padding,
                                        self.dilation)
        return choose_strategy(x, self.out_channels, self.groups,
                               out_h * out_w, self.strategy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernels, bias = self.mixed_kernels(self.routing_weights(x))
        geometry = (self.stride, self.padding, self.dilation, self.groups)
        if self.choose_strategy(x) == 'unfold':
            return cond_conv_unfold(x, kernels, bias, *geometry,
                                    kernel_size=self.kernel_size)
        return cond_conv_grouped(x, kernels, bias, *geometry)

    # --------------------------------------------------------- from_conv
    @classmethod
    def from_conv(cls,
                  conv: nn.Conv2d,
                  num_experts: int = 4,
                  expert_jitter: float = 0.01,
                  strategy: str = 'auto') -> 'CondConv':
        """A CondConv computing exactly what ``conv`` computes, ready to train.

        Construction: routing weight and bias zero, so ``r_e(x) = sigmoid(0)
        = 1/2`` for every input; expert ``e`` is ``(2 / E) W + j_e`` with
        ``j_e`` zero-mean over the experts, so ``sum_e r_e W_e = W`` exactly
        (up to float rounding). The jitter (relative to ``W``'s std) breaks
        the symmetry between experts, which identical experts could never
        break by gradient descent.

        Args:
            conv (nn.Conv2d): A plain conv (zero padding).
            num_experts (int): ``E``. Defaults to 4.
            expert_jitter (float): Jitter std relative to ``W``'s std; 0
                gives identical experts. Defaults to 0.01.
            strategy (str): As for the constructor. Defaults to ``'auto'``.

        Returns:
            CondConv: on ``conv``'s device and dtype, in its training mode;
            experts and routing frozen when ``conv.weight`` is, the biases
            when ``conv.bias`` is.
        """
        geometry = plain_conv_geometry(
            conv, 'CondConv.from_conv', zero_padding_only=False)
        if expert_jitter < 0:
            raise ValueError(
                f'CondConv.from_conv: expert_jitter must be >= 0, got '
                f'{expert_jitter!r}.')
        layer = cls(**geometry, num_experts=num_experts, strategy=strategy,
                    padding_mode=conv.padding_mode).to(
                        device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            layer.routing.weight.zero_()
            layer.routing.bias.zero_()
            scale = 2.0 / num_experts
            weight = conv.weight.detach()
            jitter = torch.randn_like(layer.weight) * (
                expert_jitter * float(weight.std()) if weight.numel() > 1
                else 0.0)
            jitter -= jitter.mean(dim=0, keepdim=True)
            layer.weight.copy_(scale * weight.unsqueeze(0) + jitter)
            if conv.bias is not None:
                layer.bias.copy_(scale * conv.bias.detach().unsqueeze(0)
                                 .expand(num_experts, -1))
        layer.is_init = True
        return adopt_conv_trainability(layer, conv)

    def from_conv_kwargs(self) -> dict:
        """``from_conv`` arguments that rebuild ``E`` and the strategy."""
        return dict(num_experts=self.num_experts, strategy=self.strategy)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, num_experts={self.num_experts}, '
                f'bias={self.bias is not None}, strategy={self.strategy!r}')
