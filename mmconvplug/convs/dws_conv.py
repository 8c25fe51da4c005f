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
metainfo, :func:`mmconvplug.convs.set_domain_from_data_samples`).
Without the gate only the active domain's depthwise conv and norm take part
in a step, so the other domains' are frozen while it is active (and unfrozen
when theirs is): DDP trains one domain with its default flags (see
:mod:`mmconvplug.convs.domain`). With the gate every domain trains.

Fold (:mod:`.dws_conv_fold`): :meth:`DWSConv.fold` returns one plain
``nn.Conv2d`` of the same geometry for the active domain, or with
``fold_to='separable'`` the cheaper depthwise + pointwise pair. The gated
form and a norm without running statistics (GN, ...) do not fold.
"""
from typing import FrozenSet, Optional, Tuple

import torch
from mmcv.cnn import build_norm_layer
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import MODELS
from ..utils.arg_checks import check_choice, check_int
from .attributes import IntOrPair
from .base import FoldableConvMixin, FoldUnsupportedError
from .domain import MultiDomainMixin
from .dws_conv_fold import fuse_norm, separable_pair, separable_to_dense

#: Values accepted by ``DWSConv(fold_to=...)``.
DWS_FOLD_TARGETS = ('conv', 'separable')


@MODELS.register_module()
class DWSConv(FoldableConvMixin, MultiDomainMixin, nn.Module):
    """Multi-domain depthwise-separable conv, a drop-in for ``nn.Conv2d``.

    Input (N, C_in, H, W) -> output (N, C_out, H_out, W_out), sizes as for
    ``nn.Conv2d``; the depthwise conv takes the spatial geometry.

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        kernel_size (int | tuple[int, int]): Kernel size (kh, kw).
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of the shared pointwise (1x1, stride 1) conv,
            so the layer connects channels as an ``nn.Conv2d`` with these
            groups would. Defaults to 1.
        bias (bool): A bias (C_out,) on the pointwise conv. Defaults to True.
        num_domains (int): Domains, each with its own depthwise conv and
            norm. Defaults to 1.
        gate (bool): The paper's soft sharing. Defaults to False.
        gate_reduction (int): The gate MLP's hidden size is
            ``in_channels // gate_reduction + 1`` (paper: 4). Defaults to 4.
        norm_cfg (dict, optional): Norm after each domain's depthwise conv;
            None for none. Defaults to ``dict(type='BN')``.
        fold_to (str): What :meth:`fold` returns: ``'conv'`` (one
            ``nn.Conv2d``) or ``'separable'`` (depthwise + pointwise
            ``nn.Sequential``). Defaults to ``'conv'``.
        padding_mode (str): Only ``'zeros'``. Defaults to ``'zeros'``.

    Raises:
        ValueError: a bad geometry, count, ``fold_to`` or ``norm_cfg``.
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
        check_int(num_domains, 'num_domains', 'DWSConv', low=1)
        check_int(gate_reduction, 'gate_reduction', 'DWSConv', low=1,
                  hint='the paper uses 4')
        check_choice(fold_to, 'fold_to', 'DWSConv', DWS_FOLD_TARGETS)
        check_choice(padding_mode, 'padding_mode', 'DWSConv', ('zeros', ))
        if norm_cfg is not None and not isinstance(norm_cfg, dict):
            raise ValueError(
                f'DWSConv: norm_cfg must be a dict such as dict(type="BN") '
                f'or None, got {norm_cfg!r}.')
        self.num_domains = num_domains
        self._active_domain = 0
        self.fold_to, self.padding_mode = fold_to, padding_mode
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
        hidden = in_channels // gate_reduction + 1
        self.gate = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_domains)) if gate else None
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
        norm = None if self.norms is None else self.norms[self.active_domain]
        return fuse_norm(self.depthwise[self.active_domain].weight, norm)

    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The single conv equal to this layer (active domain, eval mode):
        :func:`~mmconvplug.convs.dws_conv_fold.separable_to_dense`."""
        dw_weight, dw_bias = self.fused_depthwise()
        return separable_to_dense(dw_weight, dw_bias, self.pointwise.weight,
                                  self.pointwise.bias, self.groups)

    def fold_separable(self) -> nn.Sequential:
        """Deploy form: ``Sequential(depthwise (norm fused), pointwise)``
        for the active domain, as cheap as the layer itself."""
        return separable_pair(self)

    def fold(self) -> nn.Module:
        """The active domain as a plain module (see ``fold_to``)."""
        self._check_foldable()
        if self.fold_to == 'separable':
            return self.fold_separable()
        return super().fold()

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, num_domains={self.num_domains}, '
                f'active_domain={self.active_domain}, '
                f'gate={self.gate is not None}')
