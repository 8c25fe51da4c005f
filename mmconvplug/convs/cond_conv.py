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

Four exact ways compute the batch (``strategy``):

``unfold``
    each example's patches (``F.unfold``) times its own kernel, one batched
    matrix product for the whole batch (per group). No per-example conv
    calls and no kernel reorder per call; an extra pass over k*k times the
    input. Batch-size agnostic, so also the traced/exported computation.
``grouped``
    timm's formulation: the batch folded into channels and one grouped
    conv with a group per example.
``per_example``
    one dense conv per example with its own kernel.
``mix_outputs``
    conv the whole batch once with the ``E`` experts stacked as one conv of
    ``E * out_channels`` outputs, then mix the ``E`` outputs with ``r``
    (exact by linearity of the conv in its kernel): ``E`` times the
    arithmetic in one call.

``strategy='auto'`` applies :meth:`CondConv.choose_strategy`'s rule. While
tracing or exporting to ONNX the batch size must not enter the graph, so
``grouped`` (its group count) and ``per_example`` (its Python loop) are
replaced by ``unfold``, which gives the same result. So are they on an
empty batch (``(0, C, H, W)``, e.g. a mask head meeting no positive RoI),
where a conv with zero groups or a concatenation of no examples does not
exist: the layer then returns the empty output and, after a backward, zero
gradients, as ``nn.Conv2d`` does.

Every strategy is made of ops in ONNX opset 11 (``MatMul``, ``Conv``,
``Reshape``, ...; no ``Einsum``), so the layer exports at opset 11 and up.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import MODELS
from .base import (IntOrPair, NonFoldableConvMixin, adopt_conv_trainability,
                   is_exporting, plain_conv_geometry)

#: Strategy names accepted by ``CondConv(strategy=...)``.
COND_CONV_STRATEGIES = ('auto', 'unfold', 'grouped', 'per_example',
                        'mix_outputs')

#: :meth:`CondConv.choose_strategy` takes ``unfold`` when a group's output
#: channels are at least this many times the output positions per example
#: (see the rule there).
UNFOLD_MIN_CHANNELS_PER_POSITION = 4.0


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
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(
                f'CondConv: num_experts must be an int >= 1, got '
                f'{num_experts!r}; the paper uses 4 to 32.')
        if strategy not in COND_CONV_STRATEGIES:
            raise ValueError(
                f'CondConv: strategy={strategy!r} is not one of '
                f'{COND_CONV_STRATEGIES}; use "auto" to pick per shape.')
        if padding_mode != 'zeros':
            raise ValueError(
                f'CondConv: padding_mode={padding_mode!r} is not supported; '
                'only "zeros" is. Pad the input yourself (or let ConvModule '
                'add a padding layer) and pass padding=0.')
        self.num_experts = num_experts
        self.strategy = strategy
        self.padding_mode = padding_mode
        expert_shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = nn.Parameter(torch.empty(num_experts, *expert_shape))
        if bias:
            self.bias = nn.Parameter(torch.empty(num_experts, out_channels))
        else:
            self.register_parameter('bias', None)
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
        kernels = (routing @ self.weight.flatten(1)).view(
            -1, *self.weight.shape[1:])
        bias = routing @ self.bias if self.bias is not None else None
        return kernels, bias

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """Spatial size of the output for an input of ``height x width``."""
        sizes = []
        for size, k, s, p, d in zip((height, width), self.kernel_size,
                                    self.stride, self.padding,
                                    self.dilation):
            sizes.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return sizes[0], sizes[1]

    def choose_strategy(self, x: torch.Tensor) -> str:
        """The strategy ``'auto'`` uses for input ``x``.

        * tracing / ONNX export: ``unfold`` (batch-size agnostic);
        * an empty batch: ``unfold`` (the per-example strategies need an
          example);
        * one example: ``per_example`` (a plain conv, nothing else);
        * ``unfold`` when a group's output channels are at least
          :data:`UNFOLD_MIN_CHANNELS_PER_POSITION` times the output
          positions per example (deep layers on small maps: 512 channels
          at 7x7, 1024 at 10x10), else ``grouped``.

        Why: every per-example strategy reads and writes the ``N`` mixed
        kernels (N * C_out * C_in/groups * kh*kw values), and a conv call
        on them first reorders each kernel into the conv library's blocked
        layout, once per example (``per_example``) or for the whole grouped
        kernel (``grouped``). ``unfold`` skips the reorder and the grouped
        conv's per-group scheduling but writes k*k copies of the input
        (N * C_in * kh*kw * L values for L output positions). The kernel
        term dominates the input term when C_out/groups >> L. Measured in
        one process (CPU, one thread, batch 8, 3x3, train step; ratios of
        ``unfold`` to ``grouped``): 0.68 at 512 channels 7x7 (C_out/L =
        10.4), 0.7-1.0 at C_out/L ~ 5 (256@7x7, 512@10x10, 1024@14x14,
        128@5x5), 1.0-1.2 at C_out/L ~ 2.6-2.8 (512@14x14, 256@10x10,
        1024@19x19) and 1.3-2.5 below (256@14x14 ... 64@56x56); for 1x1
        convs 0.9-0.95 at C_out/L ~ 10 (1024@10x10). Hence the threshold 4.
        ``per_example`` was never clearly faster than ``grouped`` at batch
        8 on maps of 7x7 and more. ``mix_outputs`` (E times the arithmetic,
        no per-example kernels) won on some maps of at most 5x5 (0.49x of
        ``grouped`` against ``unfold``'s 0.73x at 1024 channels 3x3) and
        lost on others (1.0x against 0.25x at 64 channels 4x4), so the rule
        leaves it to an explicit ``strategy='mix_outputs'``.
        Reproduce with ``python tools/benchmark.py layers --shapes
        condconv`` (the timm-style column is ``grouped``).
        """
        if is_exporting():
            return 'unfold'
        batch = x.shape[0]
        if batch == 0:
            return 'unfold'
        if batch == 1:
            return 'per_example'
        out_h, out_w = self.output_size(x.shape[2], x.shape[3])
        channels_per_position = (self.out_channels / self.groups) / (
            out_h * out_w)
        if channels_per_position >= UNFOLD_MIN_CHANNELS_PER_POSITION:
            return 'unfold'
        return 'grouped'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = self.routing_weights(x)
        strategy = self.strategy
        if strategy == 'auto':
            strategy = self.choose_strategy(x)
        elif strategy in ('grouped', 'per_example') and (
                is_exporting() or x.shape[0] == 0):
            # Exporting: theirs would bake the batch size in. An empty
            # batch: no conv has zero groups, no cat has zero examples.
            strategy = 'unfold'
        if strategy == 'mix_outputs':
            return self._forward_mix_outputs(x, routing)
        if strategy == 'grouped':
            return self._forward_grouped(x, routing)
        if strategy == 'per_example':
            return self._forward_per_example(x, routing)
        return self._forward_unfold(x, routing)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor,
              bias: Optional[torch.Tensor], groups: int) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding,
                        self.dilation, groups)

    def _forward_unfold(self, x: torch.Tensor,
                        routing: torch.Tensor) -> torch.Tensor:
        """``y_n = K_n @ unfold(x_n)`` for all ``n`` in one batched matmul
        (per group: ``(C_out/g, C_in/g*kh*kw) @ (C_in/g*kh*kw, L)``)."""
        kernels, bias = self.mixed_kernels(routing)
        groups = self.groups
        out_h, out_w = self.output_size(x.shape[2], x.shape[3])
        if (self.kernel_size == (1, 1) and self.padding == (0, 0)
                and self.dilation == (1, 1)):
            if self.stride != (1, 1):
                x = x[:, :, ::self.stride[0], ::self.stride[1]]
            columns = x.flatten(2)
        else:
            columns = F.unfold(x, self.kernel_size, self.dilation,
                               self.padding, self.stride)
        positions = columns.shape[-1]
        out = torch.matmul(
            kernels.reshape(-1, groups, self.out_channels // groups,
                            self.weight[0, 0].numel()),
            columns.reshape(-1, groups, columns.shape[1] // groups,
                            positions))
        out = out.reshape(-1, self.out_channels, out_h, out_w)
        if bias is not None:
            out = out + bias[:, :, None, None]
        return out

    def _forward_per_example(self, x: torch.Tensor,
                             routing: torch.Tensor) -> torch.Tensor:
        kernels, bias = self.mixed_kernels(routing)
        # split/unbind (not indexing): their backward concatenates the
        # examples' gradients instead of summing N zero-padded full copies.
        biases = bias.unbind(0) if bias is not None else [None] * len(x)
        outputs = [
            self._conv(example, kernel, example_bias, self.groups)
            for example, kernel, example_bias in zip(
                x.split(1, dim=0), kernels.unbind(0), biases)
        ]
        return torch.cat(outputs, dim=0)

    def _forward_grouped(self, x: torch.Tensor,
                         routing: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        kernels, bias = self.mixed_kernels(routing)
        out = self._conv(
            x.reshape(1, batch * channels, height, width),
            kernels.reshape(batch * self.out_channels, *kernels.shape[2:]),
            bias.reshape(-1) if bias is not None else None,
            self.groups * batch)
        return out.view(batch, self.out_channels, *out.shape[2:])

    def _forward_mix_outputs(self, x: torch.Tensor,
                             routing: torch.Tensor) -> torch.Tensor:
        experts, groups = self.num_experts, self.groups
        out_per_group = self.out_channels // groups
        # Stack the experts group-major, so that one conv with ``groups``
        # groups gives, for group g, the E experts' outputs side by side.
        stacked = self.weight.view(experts, groups, out_per_group,
                                   *self.weight.shape[2:]).transpose(0, 1)
        stacked = stacked.reshape(groups * experts * out_per_group,
                                  *self.weight.shape[2:])
        out = self._conv(x, stacked, None, groups)
        out_h, out_w = out.shape[2:]
        # sum_e r[b, e] out[b, g, e, :]: a (1 x E) @ (E x O*H*W) matmul
        # per example and group (ONNX MatMul, opset 11; no Einsum).
        out = out.reshape(-1, groups, experts, out_per_group * out_h * out_w)
        mixed = torch.matmul(routing[:, None, None, :], out)
        mixed = mixed.reshape(-1, self.out_channels, out_h, out_w)
        if self.bias is not None:
            mixed = mixed + (routing @ self.bias)[:, :, None, None]
        return mixed

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
        layer = cls(
            **geometry,
            num_experts=num_experts,
            strategy=strategy,
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
        return (super().extra_repr() +
                f', num_experts={self.num_experts}, bias='
                f'{self.bias is not None}, strategy={self.strategy!r}')
