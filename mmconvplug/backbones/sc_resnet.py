"""SCResNet: SCNet-50/101 (and v1d) as an mmdet/mmseg backbone.

Subclasses mmdet's ``ResNet`` with :class:`SCBottleneck` in
``arch_settings``, so the stem, ``frozen_stages``, ``norm_eval``,
``out_indices``, ``strides``/``dilations``, ``deep_stem``/``avg_down``,
``conv_cfg`` and ``init_cfg`` behave exactly as for mmdet's ResNet. It also
accepts mmseg's ``contract_dilation`` and ``multi_grid`` so DeepLab configs
(``ResNetV1c`` with ``dilations=(1, 1, 2, 4)``) swap it in directly.

Every module is named as in the official code (MCG-NKU/SCNet ``scnet.py``),
so the official ImageNet checkpoints load strictly (their ``fc.*``
classifier aside): the 7x7 stem is ``conv1`` + ``bn1`` as in mmdet's ResNet,
and the deep 3x3 stem of v1d is ``conv1.0/1/3/4/6`` (conv, BN, ReLU, conv,
BN, ReLU, conv) + ``bn1``, not mmdet's ``stem.0..8``; with ``avg_down`` every
projection is ``AvgPool, conv, BN`` (``downsample.0/1/2``), the pool being
the identity (kernel 1, stride 1) where the stage does not stride.

Official ImageNet releases (the URLs of the official ``model_urls``):
:data:`SCNET_IMAGENET_CHECKPOINTS`.

Registered as ``SCResNet`` / ``SCResNetV1d`` (mmdet already has a *detector*
called ``SCNet``, so the backbone does not reuse that name).
"""
from typing import Optional, Sequence

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import ResNet
from torch import nn

from ..registry import MODELS
from ..utils.arg_checks import check_int
from .sc_bottleneck import SCBottleneck, SCResLayer

_OFFICIAL = 'https://backseason.oss-cn-beijing.aliyuncs.com/scnet/'
#: The official SCNet ImageNet checkpoints (``model_urls`` of MCG-NKU/SCNet
#: ``scnet.py``) and the backbone each loads into, key for key.
SCNET_IMAGENET_CHECKPOINTS = {
    'scnet50': _OFFICIAL + 'scnet50-dc6a7e87.pth',  # SCResNet(depth=50)
    'scnet50_v1d': _OFFICIAL + 'scnet50_v1d-4109d1e1.pth',  # SCResNetV1d(50)
    'scnet101': _OFFICIAL + 'scnet101-44c5b751.pth',  # SCResNet(depth=101)
}


@MODELS.register_module()
class SCResNet(ResNet):
    """SCNet backbone ("Improving Convolutional Networks with
    Self-Calibrated Convolutions", Liu et al. CVPR 2020).

    Args:
        depth: 50 or 101 (the depths the paper trains).
        avd: SCNet v1d's average-pool downsampling inside the blocks.
        pooling_r: SCConv's calibration down-sampling rate (paper: 4).
        contract_dilation: mmseg's option: halve the first block's dilation
            in a dilated stage (``ResNetV1c`` DeepLab configs set it).
        multi_grid: mmseg's option: per-block dilations of the last stage.
        **kwargs: Everything mmdet's ``ResNet`` takes (``out_indices``,
            ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``style``,
            ``strides``, ``dilations``, ``deep_stem``, ``avg_down``,
            ``conv_cfg``, ``with_cp``, ``zero_init_residual``, ``init_cfg``).

    Example:
        >>> backbone = SCResNet(depth=50, out_indices=(0, 1, 2, 3))
    """

    arch_settings = {
        50: (SCBottleneck, (3, 4, 6, 3)),
        101: (SCBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self,
                 depth: int,
                 avd: bool = False,
                 pooling_r: int = 4,
                 contract_dilation: bool = False,
                 multi_grid: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if depth not in self.arch_settings:
            raise ValueError(
                f'{type(self).__name__}: depth={depth!r} is not supported; '
                f'choose one of {sorted(self.arch_settings)} (SCNet-50/101).')
        num_stages = kwargs.get('num_stages', 4)
        out_indices = kwargs.get('out_indices', (0, 1, 2, 3))
        check_int(num_stages, 'num_stages', type(self).__name__, low=1,
                  high=4)
        if max(out_indices) >= num_stages:
            raise ValueError(
                f'{type(self).__name__}: out_indices={tuple(out_indices)} '
                f'must index the num_stages={num_stages} stages (0..3).')
        if kwargs.get('dcn') is not None or kwargs.get('plugins'):
            raise ValueError(
                f'{type(self).__name__}: dcn/plugins are not supported by '
                'the SCNet bottleneck; remove them from the backbone config.')
        # Plain attributes read by ``make_res_layer`` while ResNet.__init__
        # builds the stages (set first: the parent constructor calls it).
        self.avd = avd
        self.pooling_r = pooling_r
        self.contract_dilation = contract_dilation
        self.multi_grid = multi_grid
        self._zero_init_blocks = (
            kwargs.get('zero_init_residual', True)
            and kwargs.get('init_cfg') is None
            and kwargs.get('pretrained') is None)
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        """The stem in the official layout: ``conv1`` + ``bn1`` (+ ReLU,
        max-pool); ``conv1`` is the 7x7 conv, or with ``deep_stem`` the
        official ``Sequential(conv3x3/2, BN, ReLU, conv3x3, BN, ReLU,
        conv3x3)`` of widths ``stem_channels / 2, / 2, stem_channels``."""
        if not self.deep_stem:
            super()._make_stem_layer(in_channels, stem_channels)
            return
        half = stem_channels // 2
        self.conv1 = nn.Sequential(
            build_conv_layer(self.conv_cfg, in_channels, half, 3, stride=2,
                             padding=1, bias=False),
            build_norm_layer(self.norm_cfg, half)[1],
            nn.ReLU(inplace=True),
            build_conv_layer(self.conv_cfg, half, half, 3, stride=1,
                             padding=1, bias=False),
            build_norm_layer(self.norm_cfg, half)[1],
            nn.ReLU(inplace=True),
            build_conv_layer(self.conv_cfg, half, stem_channels, 3, stride=1,
                             padding=1, bias=False))
        self.norm1_name, norm1 = build_norm_layer(
            self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for module in (self.conv1, self.norm1):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False
        for index in range(1, self.frozen_stages + 1):
            stage = getattr(self, f'layer{index}')
            stage.eval()
            for param in stage.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> tuple:
        """Features of the stages in ``out_indices`` (N, C_i, H_i, W_i)."""
        x = self.maxpool(self.relu(self.norm1(self.conv1(x))))
        outs = []
        for index, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'SCResNet':
        """ResNet's train (frozen stages, ``norm_eval``), returning ``self``
        as ``nn.Module.train`` does (mmdet's returns None)."""
        super().train(mode)
        return self

    def make_res_layer(self, **kwargs) -> SCResLayer:
        """Build stage ``len(self.res_layers)`` (called by ResNet.__init__)."""
        stage_index = len(self.res_layers)
        if self._zero_init_blocks and kwargs.get('init_cfg') is None:
            # mmdet only zero-inits its own Bottleneck; do the same for ours
            # so each residual block starts as the identity.
            kwargs['init_cfg'] = dict(
                type='Constant', val=0, override=dict(name='norm3'))
        last_stage = stage_index == self.num_stages - 1
        return SCResLayer(
            avd=self.avd,
            pooling_r=self.pooling_r,
            is_first_stage=stage_index == 0,
            contract_dilation=self.contract_dilation,
            multi_grid=self.multi_grid if last_stage else None,
            **kwargs)


@MODELS.register_module()
class SCResNetV1d(SCResNet):
    """SCNet v1d: deep 3x3 stem, avg-down projections and avd blocks.

    The official ``scnet50_v1d`` (80.47 top-1 vs 77.81 for SCNet-50), whose
    checkpoint (:data:`SCNET_IMAGENET_CHECKPOINTS`) loads strictly into
    ``SCResNetV1d(depth=50)`` (default ``stem_channels=64``: the official
    ``stem_width=32``).
    """

    def __init__(self, **kwargs) -> None:
        for name in ('deep_stem', 'avg_down', 'avd'):
            if name in kwargs:
                raise ValueError(
                    f'SCResNetV1d: {name} is fixed to True by the v1d '
                    f'variant; remove it, or use type="SCResNet" with '
                    f'{name}={kwargs[name]!r}.')
        super().__init__(deep_stem=True, avg_down=True, avd=True, **kwargs)
