"""DomainBN: one BatchNorm per visual domain, switched with the model.

In the multi-domain networks of Rebuffi et al. (residual adapters) and Guo
et al. ("Depthwise Convolution is All You Need for Learning Multiple Visual
Domains", AAAI 2019) every norm layer is domain-specific: each domain keeps
its own statistics and affine parameters. ``DomainBN`` is that layer as an
mmcv norm (``norm_cfg=dict(type='DomainBN', num_domains=N)``) and a
:class:`~mmconvplug.convs.domain.MultiDomainMixin`, so
``set_active_domain(model, d)`` switches it together with the ``DWSConv``
layers and ``count_domain_parameters`` counts its per-domain cost. The BNs
of the other domains are frozen while a domain is active (they take no part
in the forward; see :mod:`mmconvplug.convs.domain`). mmcv's
``build_norm_layer`` sets ``requires_grad`` on every parameter after building
a norm, so a model that builds ``DomainBN`` from ``norm_cfg`` calls
``set_active_domain`` (or ``sync_domain_trainability``) once it is built, as
``MultiDomainResNet26`` does.
"""
import torch
from torch import nn

from ..convs.domain import MultiDomainMixin
from ..registry import MODELS
from ..utils.arg_checks import check_int


@MODELS.register_module()
class DomainBN(MultiDomainMixin, nn.Module):
    """``num_domains`` ``BatchNorm2d`` layers; the active one normalises.

    Args:
        num_features: Channels.
        num_domains: Number of domains (>= 1).
        eps, momentum, affine, track_running_stats: as ``nn.BatchNorm2d``.
    """

    _abbr_ = 'bn'

    def __init__(self,
                 num_features: int,
                 num_domains: int = 1,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        check_int(num_domains, 'num_domains', 'DomainBN', low=1)
        self.num_features = num_features
        self.num_domains = num_domains
        self._active_domain = 0
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(num_features, eps=eps, momentum=momentum,
                           affine=affine,
                           track_running_stats=track_running_stats)
            for _ in range(num_domains))
        self.sync_domain_trainability()

    def params_per_domain(self) -> int:
        """Affine parameters of one domain's BN (0 without ``affine``)."""
        return sum(p.numel() for p in self.norms[0].parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norms[self.active_domain](x)

    def extra_repr(self) -> str:
        return f'{self.num_features}, num_domains={self.num_domains}'
