"""DWSConv: depthwise-separable conv with per-domain depthwise kernels.

Guo et al., "Depthwise Convolution is All You Need for Learning Multiple
Visual Domains", AAAI 2019: images from different domains share
cross-channel correlations (one shared pointwise 1x1 conv) but have
domain-specific spatial correlations (one depthwise k x k conv, with its
norm, per domain)::

    y = Pointwise(Norm_d(Depthwise_d(x)))          d = the active domain

With ``gate=True`` (the paper's soft sharing) a small MLP on the globally
average-pooled input, ``C -> C // gate_reduction + 1 -> num_domains`` with a
ReLU, gives softmax weights ``p(x)`` over the domains and every example mixes
all domains' depthwise outputs: ``y = PW(sum_d p_d(x) Norm_d(DW_d(x)))``.

The active domain is chosen for a whole model with
:func:`mmconvplug.convs.domain.set_active_domain` (or from the batch's
metainfo, :func:`~mmconvplug.convs.domain.set_domain_from_data_samples`).
Without the gate only the active domain's depthwise conv and norm take part
in a step, so the other domains' are frozen while it is active (and unfrozen
when theirs is): DDP trains one domain with its default flags (see
:mod:`mmconvplug.convs.domain`). With the gate every domain trains.

Fold. A depthwise conv followed by a 1x1 conv, with nothing nonlinear in
between, is one conv: ``W[o, j] = P[o, j] * D_{c(o, j)}`` with the depthwise
bias (the fused norm) pushed through ``P``. :meth:`DWSConv.fold` returns that
plain ``nn.Conv2d`` (same geometry, so a folded checkpoint loads into the
stock model), keeping the active domain only. ``fold_to='separable'`` (or
:meth:`DWSConv.fold_separable`) returns the cheaper deploy form instead, an
``nn.Sequential`` of the depthwise conv with its norm fused and the pointwise
conv. Folding uses the norm's running statistics: it matches the layer in
``eval()`` mode. The gated form depends on the input through ``p(x)`` and a
norm without running statistics (GN, ...) depends on the batch, so those do
not fold.
"""
from collections import OrderedDict
from typing import FrozenSet, Optional, Tuple

import torch
from mmcv.cnn import build_norm_layer
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import MODELS
from .base import FoldableConvMixin, FoldUnsupportedError, IntOrPair
from .domain import MultiDomainMixin

#: Values accepted by ``DWSConv(fold_to=...)``.
DWS_FOLD_TARGETS = ('conv', 'separable')


@MODELS.register_module()
class DWSConv(FoldableConvMixin, MultiDomainMixin, nn.Module):
    """Multi-domain depthwise-separable conv, a drop-in for ``nn.Conv2d``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation:
            as for ``nn.Conv2d``; the depthwise conv takes the spatial
            geometry, the pointwise conv is 1x1 stride 1.
        groups: groups of the shared pointwise conv (the depthwise conv has
            one group per channel by definition), so the layer connects
            channels as an ``nn.Conv2d`` with these groups would.
        bias: a bias on the pointwise conv.
        num_domains: number of domains, each with its own depthwise conv and
            norm; the pointwise conv is shared.
        gate: the paper's soft sharing (see the module docstring).
        gate_reduction: hidden size of the gate MLP is
            ``in_channels // gate_reduction + 1`` (paper: 4).
        norm_cfg: norm after each domain's depthwise conv (default BN);
            ``None`` for none.
        fold_to: what :meth:`fold` returns: ``'conv'`` (one ``nn.Conv2d``)
            or ``'separable'`` (depthwise + pointwise ``nn.Sequential``).
        padding_mode: only ``'zeros'``.
    """

    from_conv_unsupported_reason = (
        'a dense k x k kernel is in general not a depthwise kernel followed '
        'by a 1x1 conv (each input channel would need one spatial kernel '
        'shared, up to scale, by all outputs); build DWSConv layers from '
        'their own init.')

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 num_domains: int = 1,
                 gate: bool = False,
                 gate_reduction: int = 4,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 fold_to: str = 'conv',
                 padding_mode: str = 'zeros') -> None:
        super().__init__()
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        if not isinstance(num_domains, int) or num_domains < 1:
            raise ValueError(
                f'DWSConv: num_domains must be an int >= 1, got '
                f'{num_domains!r}.')
        if not isinstance(gate_reduction, int) or gate_reduction < 1:
            raise ValueError(
                f'DWSConv: gate_reduction must be an int >= 1, got '
                f'{gate_reduction!r}; the paper uses 4.')
        if fold_to not in DWS_FOLD_TARGETS:
            raise ValueError(
                f'DWSConv: fold_to={fold_to!r} is not one of '
                f'{DWS_FOLD_TARGETS}.')
        if padding_mode != 'zeros':
            raise ValueError(
                f'DWSConv: padding_mode={padding_mode!r} is not supported; '
                'only "zeros" is.')
        if norm_cfg is not None and not isinstance(norm_cfg, dict):
            raise ValueError(
                f'DWSConv: norm_cfg must be a dict such as dict(type="BN") '
                f'or None, got {norm_cfg!r}.')
        self.num_domains = num_domains
        self._active_domain = 0
        self.fold_to = fold_to
        self.padding_mode = padding_mode
        self.norm_cfg = norm_cfg
        self.depthwise = nn.ModuleList(
            nn.Conv2d(in_channels, in_channels, self.kernel_size,
                      stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=in_channels, bias=False)
            for _ in range(num_domains))
        self.norms = None
        if norm_cfg is not None:
            self.norms = nn.ModuleList(
                build_norm_layer(norm_cfg, in_channels)[1]
                for _ in range(num_domains))
        self.pointwise = nn.Conv2d(
            in_channels, out_channels, 1, groups=groups, bias=bias)
        self.gate = None
        if gate:
            hidden = in_channels // gate_reduction + 1
            self.gate = nn.Sequential(
                nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
                nn.Linear(hidden, num_domains))
        self.foldable, self.fold_unsupported_reason = self._foldability()
        self.init_weights()
        self.sync_domain_trainability()

    def _foldability(self) -> Tuple[bool, str]:
        if self.gate is not None:
            return False, (
                'with gate=True every example mixes all domains with '
                'input-dependent weights p(x); build it with gate=False to '
                'fold the active domain.')
        if self.norms is not None and not all(
                isinstance(n, _BatchNorm) and n.track_running_stats
                for n in self.norms):
            return False, (
                f'its norm {type(self.norms[0]).__name__} has no running '
                'statistics to fuse (it depends on the batch); use a BN '
                'norm_cfg, or norm_cfg=None, to fold.')
        return True, ''

    def init_weights(self) -> None:
        """The paper's initialisation: kaiming-normal (fan_out) convs, norms
        at weight 1 and bias 0, the gate as ``nn.Linear``. ``ConvModule``
        skips its own ``kaiming_init`` for a conv with this method."""
        for conv in [*self.depthwise, self.pointwise]:
            nn.init.kaiming_normal_(
                conv.weight, mode='fan_out', nonlinearity='relu')
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        for norm in self.norms if self.norms is not None else []:
            if getattr(norm, 'weight', None) is not None:
                nn.init.ones_(norm.weight)
            if getattr(norm, 'bias', None) is not None:
                nn.init.zeros_(norm.bias)
        if self.gate is not None:
            for layer in self.gate:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    def domains_in_forward(self) -> FrozenSet[int]:
        """Every domain with the gate (soft sharing), else the active one."""
        if self.gate is not None:
            return frozenset(range(self.num_domains))
        return super().domains_in_forward()

    def params_per_domain(self) -> int:
        """Parameters one more domain adds: a depthwise kernel, its norm's
        affine parameters and, with the gate, one more gate output."""
        count = sum(p.numel() for p in self.depthwise[0].parameters())
        if self.norms is not None:
            count += sum(p.numel() for p in self.norms[0].parameters())
        if self.gate is not None:
            count += self.gate[-1].in_features + 1
        return count

    # --------------------------------------------------------------- forward
    def domain_branch(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        """``Norm_d(Depthwise_d(x))`` for domain ``d``."""
        out = self.depthwise[domain](x)
        if self.norms is not None:
            out = self.norms[domain](out)
        return out

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Soft-sharing weights ``p(x)``, shape ``(B, num_domains)``."""
        if self.gate is None:
            raise ValueError(
                'DWSConv.gate_weights: this layer was built with gate=False; '
                'build it with gate=True for soft sharing.')
        return torch.softmax(self.gate(x.mean(dim=(2, 3))), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is None:
            mixed = self.domain_branch(x, self.active_domain)
        else:
            weights = self.gate_weights(x)
            mixed = sum(weights[:, d, None, None, None] *
                        self.domain_branch(x, d)
                        for d in range(self.num_domains))
        return self.pointwise(mixed)

    # ------------------------------------------------------------------ fold
    def _check_foldable(self) -> None:
        if not self.foldable:
            raise FoldUnsupportedError(
                f'DWSConv cannot be folded: {self.fold_unsupported_reason}')

    def fused_depthwise(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The active domain's depthwise kernel and bias with its norm
        (running statistics) fused in: shapes ``(C, 1, kh, kw)``, ``(C,)``."""
        self._check_foldable()
        weight = self.depthwise[self.active_domain].weight
        bias = weight.new_zeros(self.in_channels)
        if self.norms is not None:
            norm = self.norms[self.active_domain]
            scale = torch.rsqrt(norm.running_var + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight
            bias = -norm.running_mean * scale
            if norm.bias is not None:
                bias = bias + norm.bias
            weight = weight * scale[:, None, None, None]
        return weight, bias

    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The single conv equal to this layer (active domain, eval mode).

        ``W[o, j] = P[o, j] * D[c]`` with ``c = g(o) * C_in/G + j`` the input
        channel of group ``g(o)``; ``b = P @ b_D + b_P``.
        """
        dw_weight, dw_bias = self.fused_depthwise()
        groups = self.groups
        in_per_group = self.in_channels // groups
        out_per_group = self.out_channels // groups
        pw = self.pointwise.weight.view(groups, out_per_group, in_per_group)
        dw = dw_weight.view(groups, in_per_group, *self.kernel_size)
        weight = torch.einsum('goi,gikl->goikl', pw, dw).reshape(
            self.out_channels, in_per_group, *self.kernel_size)
        bias = torch.einsum('goi,gi->go', pw,
                            dw_bias.view(groups, in_per_group)).reshape(-1)
        if self.pointwise.bias is not None:
            bias = bias + self.pointwise.bias
        return weight, bias

    @torch.no_grad()
    def fold_separable(self) -> nn.Sequential:
        """Deploy form: ``Sequential(depthwise (norm fused), pointwise)``
        for the active domain, as cheap as the layer itself."""
        dw_weight, dw_bias = self.fused_depthwise()
        depthwise = nn.Conv2d(
            self.in_channels, self.in_channels, self.kernel_size,
            stride=self.stride, padding=self.padding, dilation=self.dilation,
            groups=self.in_channels, bias=True, device=dw_weight.device,
            dtype=dw_weight.dtype)
        depthwise.weight.copy_(dw_weight)
        depthwise.bias.copy_(dw_bias)
        pointwise = nn.Conv2d(
            self.in_channels, self.out_channels, 1, groups=self.groups,
            bias=self.pointwise.bias is not None,
            device=dw_weight.device, dtype=dw_weight.dtype)
        pointwise.load_state_dict(self.pointwise.state_dict())
        # Frozen where the layer is: each folded tensor requires grad when
        # a tensor it is computed from does (the active domain's parts).
        norm = [] if self.norms is None else list(
            self.norms[self.active_domain].named_parameters())
        depthwise.weight.requires_grad_(
            self.depthwise[self.active_domain].weight.requires_grad
            or any(p.requires_grad for n, p in norm if n == 'weight'))
        depthwise.bias.requires_grad_(any(p.requires_grad for _, p in norm))
        for name, param in pointwise.named_parameters():
            param.requires_grad_(
                self.pointwise.get_parameter(name).requires_grad)
        folded = nn.Sequential(
            OrderedDict(depthwise=depthwise, pointwise=pointwise))
        folded.train(self.training)
        return folded

    def fold(self) -> nn.Module:
        """The active domain as a plain module (see ``fold_to``)."""
        self._check_foldable()
        if self.fold_to == 'separable':
            return self.fold_separable()
        return super().fold()

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', num_domains={self.num_domains}, '
                f'active_domain={self.active_domain}, '
                f'gate={self.gate is not None}')
