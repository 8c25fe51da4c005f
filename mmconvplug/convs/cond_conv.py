"""CondConv: a convolution whose kernel is a per-example mix of experts.

Yang et al., "CondConv: Conditionally Parameterized Convolutions for
Efficient Inference", NeurIPS 2019 (arXiv:1904.04971).

For an input ``x`` the layer computes ``conv(x, sum_e r_e(x) W_e) +
sum_e r_e(x) b_e`` with ``num_experts`` kernels ``W_e`` (and biases ``b_e``)
and the routing weights ``r(x) = sigmoid(GAP(x) R + c)``, one linear layer
``(R, c)`` per CondConv layer. The kernel depends on the input, so no single
plain conv computes the same function: CondConv does not fold.

Three exact ways compute the batch; :meth:`CondConv.choose_strategy` picks the
cheapest for the shape at hand (``strategy='auto'``), or a fixed one is used:

``per_example``
    build each example's kernel (``B`` small mixes) and run one dense conv per
    example (for an unpadded ungrouped 1x1 conv: one batched matmul). Same
    arithmetic as a plain conv plus ``B`` call overheads; the best choice
    whenever the spatial maps are not tiny.
``mix_outputs``
    conv the whole batch once with the ``E`` experts stacked as one conv of
    ``E * out_channels`` outputs, then mix the ``E`` outputs with ``r``. Exact
    by linearity of the conv in its kernel; ``E`` times the arithmetic but a
    single call, so it wins on tiny maps with a large batch.
``grouped``
    timm's formulation: the batch folded into channels and one grouped conv
    with a group per example. On CPU it beats ``per_example`` on mid-size
    maps with a large batch (fewer calls) and loses ~10 % on large maps.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import MODELS
from .base import IntOrPair, NonFoldableConvMixin, plain_conv_geometry

#: Strategy names accepted by ``CondConv(strategy=...)``.
COND_CONV_STRATEGIES = ('auto', 'per_example', 'mix_outputs', 'grouped')

#: Cost model of :meth:`CondConv.choose_strategy`, in forward
#: multiply-accumulates (MACs) of a large conv. Fitted to train-step timings
#: on CPU (torch 2.13, one thread, ~0.7 ns per forward MAC of a train step):
#: what each example adds to ``per_example`` (its own conv calls, ~2.4 ms)
#: and to ``grouped`` (~1.7 ms), what it adds to ``mix_outputs`` (mixing
#: E outputs, ~0.5 ms), and how much slower the grouped conv runs the same
#: arithmetic on large maps (~10 %).
PER_EXAMPLE_OVERHEAD_MACS = 3_300_000
GROUPED_OVERHEAD_MACS = 2_400_000
MIX_OVERHEAD_MACS = 700_000
GROUPED_SLOWDOWN = 1.1


@MODELS.register_module()
class CondConv(NonFoldableConvMixin, nn.Module):
    """Conditionally parameterized conv, a drop-in for ``nn.Conv2d``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias: as for ``nn.Conv2d``; every expert has this geometry.
        num_experts: number of expert kernels ``E`` (>= 1).
        strategy: how the batch is computed, one of
            :data:`COND_CONV_STRATEGIES`; ``'auto'`` picks the cheapest
            exact strategy per input shape.
        padding_mode: only ``'zeros'`` (the kernel is built per example and
            run through ``F.conv2d``, which pads with zeros).

    Each expert is initialised as ``nn.Conv2d`` initialises its kernel
    (kaiming-uniform with ``a = sqrt(5)``) and the routing layer as
    ``nn.Linear`` does; :meth:`init_weights` re-applies that, and
    ``ConvModule`` leaves a conv with an ``init_weights`` method alone.
    """

    fold_unsupported_reason = (
        'its kernel sum_e r_e(x) W_e depends on the input x through the '
        'routing weights, so no fixed kernel reproduces it; keep CondConv '
        'at deployment, or train with a foldable variant (DOConv, RefConv).')

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

    # ------------------------------------------------------------------ init
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
        break by gradient descent; ``expert_jitter=0`` gives identical ones.
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
        layer.train(conv.training)
        return layer

    def from_conv_kwargs(self) -> dict:
        return dict(num_experts=self.num_experts, strategy=self.strategy)

    # --------------------------------------------------------------- forward
    def routing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``r(x) = sigmoid(GAP(x) R + c)``, shape ``(B, num_experts)``.

        GAP is a sum scaled afterwards: the backward of ``mean`` would
        materialise a full-size ``grad / (H W)`` tensor, a pass over the
        input as costly as a 1x1 conv's; a sum's backward is a broadcast.
        """
        pooled = x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])
        return torch.sigmoid(self.routing(pooled))

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """Spatial size of the output for an input of ``height x width``."""
        sizes = []
        for size, k, s, p, d in zip((height, width), self.kernel_size,
                                    self.stride, self.padding,
                                    self.dilation):
            sizes.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return sizes[0], sizes[1]

    def choose_strategy(self, x: torch.Tensor) -> str:
        """The cheapest exact strategy for this input (``strategy='auto'``).

        With ``F`` the MACs of one plain conv over the batch: ``per_example``
        costs ``F`` plus a per-example overhead, ``grouped`` a little more
        than ``F`` plus a smaller per-example overhead, ``mix_outputs``
        ``E * F`` plus a small per-example mixing cost. Large maps (detection)
        pick ``per_example``, mid-size maps with a large batch ``grouped``,
        tiny maps with a large batch ``mix_outputs``.
        """
        batch = x.shape[0]
        out_h, out_w = self.output_size(x.shape[2], x.shape[3])
        macs = (batch * self.out_channels * self.weight[0][0].numel() *
                out_h * out_w)
        costs = {
            'per_example': macs + batch * PER_EXAMPLE_OVERHEAD_MACS,
            'grouped': GROUPED_SLOWDOWN * macs +
            batch * GROUPED_OVERHEAD_MACS,
            'mix_outputs': self.num_experts * macs +
            batch * MIX_OVERHEAD_MACS,
        }
        if batch == 1:
            return 'per_example'  # one example: a plain conv, nothing else
        return min(costs, key=costs.get)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = self.routing_weights(x)
        strategy = self.strategy
        if strategy == 'auto':
            strategy = self.choose_strategy(x)
        if strategy == 'mix_outputs':
            return self._forward_mix_outputs(x, routing)
        if strategy == 'grouped':
            return self._forward_grouped(x, routing)
        return self._forward_per_example(x, routing)

    def _mixed_kernels(
        self, routing: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Per-example kernels ``(B, out, in/g, kh, kw)`` and biases."""
        batch = routing.shape[0]
        kernels = (routing @ self.weight.flatten(1)).view(
            batch, *self.weight.shape[1:])
        bias = routing @ self.bias if self.bias is not None else None
        return kernels, bias

    def _conv(self, x: torch.Tensor, weight: torch.Tensor,
              bias: Optional[torch.Tensor], groups: int) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding,
                        self.dilation, groups)

    def _forward_per_example(self, x: torch.Tensor,
                             routing: torch.Tensor) -> torch.Tensor:
        kernels, bias = self._mixed_kernels(routing)
        if self.kernel_size == (1, 1) and self.padding == (0, 0) and \
                self.groups == 1:
            return self._pointwise_per_example(x, kernels, bias)
        # split/unbind (not indexing): their backward concatenates the
        # examples' gradients instead of summing B zero-padded full copies.
        biases = bias.unbind(0) if bias is not None else [None] * len(x)
        outputs = [
            self._conv(example, kernel, example_bias, self.groups)
            for example, kernel, example_bias in zip(
                x.split(1, dim=0), kernels.unbind(0), biases)
        ]
        return torch.cat(outputs, dim=0)

    def _pointwise_per_example(self, x: torch.Tensor, kernels: torch.Tensor,
                               bias: Optional[torch.Tensor]) -> torch.Tensor:
        """A 1x1 conv per example is a matrix product per example: one
        batched matmul, without splitting the batch (1x1 convs are memory
        bound, so the split and concatenation would cost more than the
        arithmetic)."""
        if self.stride != (1, 1):
            x = x[:, :, ::self.stride[0], ::self.stride[1]]
        batch, channels, out_h, out_w = x.shape
        out = torch.bmm(kernels.view(batch, self.out_channels, channels),
                        x.reshape(batch, channels, out_h * out_w))
        if bias is not None:
            out = out + bias[:, :, None]
        return out.view(batch, self.out_channels, out_h, out_w)

    def _forward_grouped(self, x: torch.Tensor,
                         routing: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        kernels, bias = self._mixed_kernels(routing)
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
        batch, _, out_h, out_w = out.shape
        out = out.view(batch, groups, experts, out_per_group, out_h, out_w)
        mixed = torch.einsum('bgeohw,be->bgohw', out, routing)
        mixed = mixed.reshape(batch, self.out_channels, out_h, out_w)
        if self.bias is not None:
            mixed = mixed + (routing @ self.bias)[:, :, None, None]
        return mixed

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', num_experts={self.num_experts}, bias='
                f'{self.bias is not None}, strategy={self.strategy!r}')
