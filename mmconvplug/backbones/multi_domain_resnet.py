"""MultiDomainResNet26: the ResNet-26 of the multi-domain papers, built
from DWSConv and per-domain BN.

Guo et al., "Depthwise Convolution is All You Need for Learning Multiple
Visual Domains" (AAAI 2019) take the ResNet-26 of Rebuffi et al.'s residual
adapters (a 3x3 stem, three stages of four basic blocks with 64/128/256
channels, parameter-free shortcuts) and make every 3x3 conv
depthwise-separable: the depthwise convs and the norms are per domain, the
pointwise convs are shared. Here that is ``conv_cfg=dict(type='DWSConv',
num_domains=N)`` and ``norm_cfg=dict(type='DomainBN', num_domains=N)``
everywhere, as a detection/segmentation backbone (``out_indices``,
``frozen_stages``, ``norm_eval``, ``init_cfg``).

``set_active_domain(model, d)`` (``mmconvplug.convs.domain``) selects the
domain; ``active_domain`` sets it at build time and ``train_domain_only``
freezes every shared parameter, so the model learns a new domain by training
only that domain's depthwise convs and norms (plus the task head). The other
domains' depthwise convs and norms are frozen while they are not used, so
``DistributedDataParallel`` trains the model with its default flags.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..convs.domain import (freeze_parameters, get_active_domain,
                            multi_domain_layers, set_active_domain)
from ..registry import MODELS
from .domain_adaptation import format_domain_overhead, freeze_all_but_domain


class ParameterFreeShortcut(nn.Module):
    """Rebuffi's "DownsampleB" shortcut: average-pool by ``stride`` and
    zero-pad the channels to ``out_channels`` (no parameters, so nothing of
    the shortcut is shared or per-domain)."""

    def __init__(self, in_channels: int, out_channels: int,
                 stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f'ParameterFreeShortcut: out_channels={out_channels} must be '
                f'>= in_channels={in_channels} (channels are zero-padded).')
        self.extra_channels = out_channels - in_channels
        self.pool = (nn.AvgPool2d(stride, stride, ceil_mode=True,
                                  count_include_pad=False)
                     if stride > 1 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class MultiDomainBasicBlock(nn.Module):
    """conv3x3 - norm - ReLU - conv3x3 - norm, plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 conv_cfg: Optional[dict], norm_cfg: dict) -> None:
        super().__init__()
        self.conv1 = build_conv_layer(
            conv_cfg, in_channels, out_channels, 3, stride=stride,
            padding=1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = build_conv_layer(
            conv_cfg, out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ParameterFreeShortcut(in_channels, out_channels,
                                                  stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


@MODELS.register_module()
class MultiDomainResNet26(BaseModule):
    """ResNet-26 with DWSConv and DomainBN (Guo et al. AAAI 2019).

    Args:
        num_domains: Number of visual domains the model keeps.
        active_domain: Domain used after building.
        gate: DWSConv's soft sharing across domains (paper's variant).
        train_domain_only: Freeze every parameter but ``active_domain``'s
            depthwise convs and norms (adapting to a new domain).
        in_channels: Image channels.
        stem_channels: Channels of the 3x3 stem (Rebuffi: 32).
        stage_channels: Channels of the three stages (64, 128, 256).
        num_blocks: Basic blocks per stage (4 gives 26 layers).
        stem_stride: Stride of the stem (1 for the Decathlon's 64x64 images;
            2 or more for detection/segmentation inputs).
        strides: Stride of each stage's first block.
        out_indices: Stages whose outputs are returned.
        frozen_stages: Freeze the stem and stages ``0..frozen_stages-1``.
        norm_eval: Keep every BN in eval mode while training.
        conv_cfg: Conv config; default ``DWSConv`` with ``num_domains`` and
            ``gate``.
        norm_cfg: Norm config; default ``DomainBN`` with ``num_domains``.
        log_overhead: Log the per-domain parameter overhead when built.
        init_cfg: mmengine init config.
    """

    depth = 26

    def __init__(self,
                 num_domains: int = 1,
                 active_domain: int = 0,
                 gate: bool = False,
                 train_domain_only: bool = False,
                 in_channels: int = 3,
                 stem_channels: int = 32,
                 stage_channels: Sequence[int] = (64, 128, 256),
                 num_blocks: int = 4,
                 stem_stride: int = 1,
                 strides: Sequence[int] = (2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 log_overhead: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        num_stages = len(stage_channels)
        if len(strides) != num_stages:
            raise ValueError(
                f'MultiDomainResNet26: strides={tuple(strides)} needs one '
                f'stride per stage ({num_stages} stages).')
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad:
            raise ValueError(
                f'MultiDomainResNet26: out_indices {bad} are not stages; use '
                f'0..{num_stages - 1}.')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(
                f'MultiDomainResNet26: frozen_stages={frozen_stages} must be '
                f'in -1..{num_stages}.')
        if conv_cfg is None:
            conv_cfg = dict(type='DWSConv', num_domains=num_domains,
                            gate=gate)
        if norm_cfg is None:
            norm_cfg = dict(type='DomainBN', num_domains=num_domains)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.train_domain_only = train_domain_only
        self._build_domain = active_domain

        self.stem = nn.Sequential(
            build_conv_layer(conv_cfg, in_channels, stem_channels, 3,
                             stride=stem_stride, padding=1, bias=False),
            build_norm_layer(norm_cfg, stem_channels)[1],
            nn.ReLU(inplace=True))
        self.stages = nn.ModuleList()
        channels = stem_channels
        for out_channels, stride in zip(stage_channels, strides):
            blocks = []
            for index in range(num_blocks):
                blocks.append(
                    MultiDomainBasicBlock(channels, out_channels,
                                          stride if index == 0 else 1,
                                          conv_cfg, norm_cfg))
                channels = out_channels
            self.stages.append(nn.Sequential(*blocks))

        if multi_domain_layers(self):
            # Also re-freezes the other domains' BNs, which mmcv's
            # build_norm_layer made trainable again.
            set_active_domain(self, active_domain)
        self._freeze()
        if log_overhead and multi_domain_layers(self):
            print_log(format_domain_overhead(self), logger='current')

    @property
    def active_domain(self) -> int:
        """The domain the layers use now (``set_active_domain`` changes it);
        the build-time one without multi-domain layers."""
        if multi_domain_layers(self):
            return get_active_domain(self)
        return self._build_domain

    def _freeze(self) -> None:
        if self.train_domain_only:
            freeze_all_but_domain(self, self.active_domain)
        frozen = [self.stem] if self.frozen_stages >= 0 else []
        frozen += list(self.stages[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            freeze_parameters(module)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'MultiDomainResNet26':
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
