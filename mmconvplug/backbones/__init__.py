"""Backbones built from the conv variants (root ``MODELS``: mmdet and mmseg
scopes both see them)."""
from .domain_adaptation import (
    domain_overhead,
    domain_parameters,
    format_domain_overhead,
    freeze_all_but_domain,
)
from .domain_norm import DomainBN
from .mobilenet_v1 import MobileNetV1
from .multi_domain_resnet import MultiDomainResNet26
from .sc_bottleneck import SCBottleneck, SCResLayer
from .sc_resnet import SCResNet, SCResNetV1d
from .ssd_vgg import SSDVGGConvCfg  # removed: raises naming conv_swap

__all__ = [
    'DomainBN', 'MobileNetV1', 'MultiDomainResNet26', 'SCBottleneck',
    'SCResLayer', 'SCResNet', 'SCResNetV1d', 'SSDVGGConvCfg',
    'domain_overhead', 'domain_parameters', 'format_domain_overhead',
    'freeze_all_but_domain'
]
