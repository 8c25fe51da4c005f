"""MultiDomainResNet26: the multi-domain ResNet-26 of Guo et al. (AAAI 2019),
built from DWSConv and per-domain BN.

Guo et al., "Depthwise Convolution is All You Need for Learning Multiple
Visual Domains" (AAAI 2019; official code
github.com/yunhuiguo/Depthwise_Convolution_for_Multiple_Domain_Learning,
``models/resnet.py`` ``FlatResNet26`` and ``models/base.py`` with
``config_task.factor = 1``) make every 3x3 conv of a ResNet-26
depthwise-separable: the depthwise convs and the BNs are per domain, the
pointwise convs are shared. Here that is ``DWSConv(num_domains=N)`` convs and
``DomainBN(num_domains=N)`` norms, as a detection/segmentation backbone
(``out_indices``, ``frozen_stages``, ``norm_eval``, ``init_cfg``).

``arch`` picks the network (:data:`MULTI_DOMAIN_RESNET26_ARCHS`):

* ``'official'`` (default), the paper's network layer for layer. Stem: a
  separable 3x3 conv 3 -> 64 and a per-domain BN (no ReLU, as the official
  ``seed``). Three stages of 4 basic blocks at 128 / 256 / 512 channels,
  each block two separable convs, each a per-domain depthwise 3x3 followed
  *directly* by the shared 1x1 pointwise (no norm in between), each
  followed by a per-domain BN. Shortcuts: average pool + zero channels
  (``DownsampleB``). Head: a per-domain BN + ReLU on the last stage's output
  (the official ``bns``, before pooling; part of the backbone here, so
  ``out_indices`` containing the last stage returns it after that BN +
  ReLU). Parameters, exactly the paper's: 2,580,672 shared (the pointwise
  convs: 192 in the stem + 122,880 + 491,520 + 1,966,080 in the stages),
  75,995 per domain: 60,507 depthwise (27 in the 3-channel stem + 8,640 +
  17,280 + 34,560; no biases) and 15,488 BN (128 stem + 2,048 + 4,096 +
  8,192 in the blocks + 1,024 for the final BN at 512 channels), 2.94 % of
  the shared network per added domain. The official per-domain FC heads
  are classification heads, not part of this backbone.
* ``'rebuffi'``, this backbone's earlier default: Rebuffi et al.'s
  residual-adapter widths (32 stem, 64 / 128 / 256 stages, half the
  paper's), a stem with ReLU, no final BN, and ``DWSConv``'s default
  per-domain BN between depthwise and pointwise. 645,216 shared parameters
  (pointwise convs), 44,225 per domain (30,267 depthwise, 13,958 BN), 6.85 %
  per added domain. Checkpoints trained with the earlier default load into
  ``arch='rebuffi'`` only.

``convert_official_state_dict``
(:mod:`mmconvplug.backbones.multi_domain_checkpoint`) maps an official
state dict to this backbone's keys; ``load_state_dict`` (and mmengine's
``load_checkpoint`` / ``Pretrained`` init) apply it when given a state
dict in the official layout, dropping the FC heads with a logged message.
A checkpoint of the other ``arch`` is refused, naming the option.

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

from ..convs.domain import (
    freeze_parameters,
    get_active_domain,
    multi_domain_layers,
    set_active_domain,
)
from ..registry import MODELS
from ..utils.arg_checks import check_int
from .domain_adaptation import format_domain_overhead, freeze_all_but_domain
from .multi_domain_checkpoint import (
    check_arch_of_state_dict,
    convert_official_in_place,
)

#: ``arch`` -> its defaults. ``separable_norm``: a per-domain BN between
#: each DWSConv's depthwise and pointwise conv; ``stem_relu``: a ReLU after
#: the stem's BN; ``final_norm``: the per-domain BN + ReLU on the last
#: stage's output.
MULTI_DOMAIN_RESNET26_ARCHS = {
    'official':
    dict(stem_channels=64, stage_channels=(128, 256, 512),
         separable_norm=False, stem_relu=False, final_norm=True),
    'rebuffi':
    dict(stem_channels=32, stage_channels=(64, 128, 256),
         separable_norm=True, stem_relu=True, final_norm=False),
}


class ParameterFreeShortcut(nn.Module):
    """Rebuffi's "DownsampleB" shortcut: average-pool by ``stride`` and
    zero-pad the channels to ``out_channels`` (no parameters, so nothing of
    the shortcut is shared or per-domain). ``ceil_mode`` pools an odd size
    as the strided 3x3 conv of the main path does; for even sizes (all the
    official network accepts) it is the official ``nn.AvgPool2d(2)``."""

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

    Input (N, 3, H, W) -> one (N, C_i, H_i, W_i) tensor per index of
    ``out_indices``: C_i = ``stage_channels[i]``, H_i = H / (``stem_stride``
    * prod(``strides[:i + 1]``)) (rounded up).

    Args:
        arch (str): ``'official'`` (the paper's network, default) or
            ``'rebuffi'`` (the earlier default of this backbone); see the
            module docstring for both layouts and their parameter counts.
        num_domains (int): Number of visual domains the model keeps.
        active_domain (int): Domain used after building.
        gate (bool): DWSConv's soft sharing across domains (the paper's
            sharing variant, ``models/base_sharing.py``).
        train_domain_only (bool): Freeze every parameter but
            ``active_domain``'s depthwise convs and norms (adapting to a new
            domain).
        in_channels (int): Image channels.
        stem_channels (int, optional): Channels of the 3x3 stem; None: the
            arch's (official 64, rebuffi 32).
        stage_channels (Sequence[int], optional): Channels of the three
            stages; None: the arch's (official (128, 256, 512), rebuffi
            (64, 128, 256)).
        num_blocks (int): Basic blocks per stage (4 gives 26 layers).
        stem_stride (int): Stride of the stem (1 for the Decathlon's 64x64
            images; 2 or more for detection/segmentation inputs).
        strides (Sequence[int]): Stride of each stage's first block.
        out_indices (Sequence[int]): Stages whose outputs are returned.
        frozen_stages (int): Freeze the stem and stages
            ``0..frozen_stages-1`` (the final BN goes with the last stage).
        norm_eval (bool): Keep every BN in eval mode while training.
        conv_cfg (dict, optional): Conv config; default ``DWSConv`` with
            ``num_domains`` and ``gate`` (and ``norm_cfg=None`` for the
            official arch).
        norm_cfg (dict, optional): Norm config; default ``DomainBN`` with
            ``num_domains``.
        log_overhead (bool): Log the per-domain parameter overhead when
            built.
        init_cfg (dict | list[dict], optional): mmengine init config.

    Raises:
        ValueError: an unknown ``arch``, a ``strides`` / ``out_indices`` /
            ``frozen_stages`` that does not fit the stages; loading a
            checkpoint of the other ``arch`` (the message names it).
        IndexError: ``active_domain`` outside ``[0, num_domains)``.
    """

    depth = 26

    def __init__(self,
                 arch: str = 'official',
                 num_domains: int = 1,
                 active_domain: int = 0,
                 gate: bool = False,
                 train_domain_only: bool = False,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 stage_channels: Optional[Sequence[int]] = None,
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
        if arch not in MULTI_DOMAIN_RESNET26_ARCHS:
            raise ValueError(
                f'MultiDomainResNet26: arch={arch!r} is not one of '
                f'{sorted(MULTI_DOMAIN_RESNET26_ARCHS)}; "official" is the '
                'paper\'s network, "rebuffi" the earlier default.')
        preset = MULTI_DOMAIN_RESNET26_ARCHS[arch]
        self.arch = arch
        if stem_channels is None:
            stem_channels = preset['stem_channels']
        if stage_channels is None:
            stage_channels = preset['stage_channels']
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
        check_int(frozen_stages, 'frozen_stages', 'MultiDomainResNet26',
                  low=-1, high=num_stages)
        if conv_cfg is None:
            conv_cfg = dict(type='DWSConv', num_domains=num_domains,
                            gate=gate)
            if not preset['separable_norm']:
                conv_cfg['norm_cfg'] = None
        if norm_cfg is None:
            norm_cfg = dict(type='DomainBN', num_domains=num_domains)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.train_domain_only = train_domain_only
        self._build_domain = active_domain

        stem = [
            build_conv_layer(conv_cfg, in_channels, stem_channels, 3,
                             stride=stem_stride, padding=1, bias=False),
            build_norm_layer(norm_cfg, stem_channels)[1]
        ]
        if preset['stem_relu']:
            stem.append(nn.ReLU(inplace=True))
        self.stem = nn.Sequential(*stem)
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
        self.final_norm = None
        if preset['final_norm']:
            self.final_norm = build_norm_layer(norm_cfg, channels)[1]

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
        if (self.final_norm is not None
                and self.frozen_stages == len(self.stages)):
            frozen.append(self.final_norm)
        for module in frozen:
            module.eval()
            freeze_parameters(module)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        last = len(self.stages) - 1
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index == last and self.final_norm is not None:
                x = F.relu(self.final_norm(x))
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

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Convert an official-layout state dict in place; refuse one of
        the other ``arch`` (torch's ``load_state_dict`` and mmengine's
        ``load_state_dict`` both call this before the children's)."""
        convert_official_in_place(state_dict, prefix)
        check_arch_of_state_dict(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
