"""SSDVGGConvCfg: mmdet's SSD VGG16 backbone, with every conv built from
``conv_cfg``.

mmdet's ``SSDVGG`` (through mmcv's ``VGG``) hard-codes ``nn.Conv2d``, so a
``conv_cfg`` cannot reach it. This class builds the very same layer list —
same ``features.<index>`` positions, same ``out_feature_indices`` — with
``mmcv.cnn.build_conv_layer(conv_cfg, ...)``. Consequences:

* with ``conv_cfg=None`` its state dict is key for key mmdet's ``SSDVGG``'s,
  so stock VGG16 checkpoints load unchanged;
* after the variant convs are folded into plain convs
  (``mmconvplug.fold_model``), the folded state dict loads, strictly, into
  the stock ``SSDVGG``. The deploy config therefore switches the backbone
  type back: :attr:`SSDVGGConvCfg.stock_type` names it and
  :meth:`SSDVGGConvCfg.stock_cfg` turns our backbone config into the stock
  one (it drops ``conv_cfg``, the only argument mmdet's class lacks).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_conv_layer
from mmengine.model import BaseModule
from torch import nn

from ..registry import MODELS

#: Convs per VGG stage, as in mmcv's ``VGG.arch_settings``.
_VGG_STAGE_BLOCKS = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}


@MODELS.register_module()
class SSDVGGConvCfg(BaseModule):
    """VGG backbone for SSD whose convs come from ``conv_cfg``.

    Args:
        depth: VGG depth, one of 11, 13, 16, 19 (SSD uses 16).
        with_last_pool: Keep the last stage's 2x2 max pool.
        ceil_mode: ``ceil_mode`` of the stage max pools (SSD300: True).
        out_indices: Accepted for config compatibility with ``SSDVGG``
            (it is forwarded to mmcv's VGG there and unused by SSD).
        out_feature_indices: ``features`` indices whose outputs are
            returned (SSD300: ``(22, 34)``: conv4_3 and fc7).
        conv_cfg: Conv config for every conv (``None``: ``nn.Conv2d``).
        pretrained: Deprecated path to a checkpoint, as in ``SSDVGG``.
        init_cfg: mmengine init config (overrides ``pretrained``).
        input_size, l2_norm_scale: Deprecated ``SSDVGG`` arguments, accepted
            and ignored so stock configs build unchanged.
    """

    #: The mmdet type a folded model of this backbone loads into.
    stock_type = 'SSDVGG'
    #: Config keys the stock type does not take (removed by ``stock_cfg``).
    extra_cfg_keys = ('conv_cfg', )

    def __init__(self,
                 depth: int = 16,
                 with_last_pool: bool = False,
                 ceil_mode: bool = True,
                 out_indices: Sequence[int] = (3, 4),
                 out_feature_indices: Sequence[int] = (22, 34),
                 conv_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg=None,
                 input_size: Optional[int] = None,
                 l2_norm_scale: Optional[float] = None) -> None:
        if depth not in _VGG_STAGE_BLOCKS:
            raise ValueError(
                f'SSDVGGConvCfg: depth={depth!r} is not a VGG depth; choose '
                f'one of {sorted(_VGG_STAGE_BLOCKS)} (SSD uses 16).')
        if init_cfg is not None and pretrained is not None:
            raise ValueError(
                'SSDVGGConvCfg: set either init_cfg or the deprecated '
                'pretrained, not both; prefer init_cfg=dict(type='
                '"Pretrained", checkpoint=PATH).')
        if init_cfg is None:
            if pretrained is not None:
                init_cfg = dict(type='Pretrained', checkpoint=pretrained)
            else:
                init_cfg = [
                    dict(type='Kaiming', layer='Conv2d'),
                    dict(type='Constant', val=1, layer='BatchNorm2d'),
                ]
        super().__init__(init_cfg)
        self.conv_cfg = conv_cfg
        self.out_indices = tuple(out_indices)
        self.features = nn.Sequential(*self._vgg_layers(
            depth, with_last_pool, ceil_mode, conv_cfg))
        num_features = len(self.features)
        bad = [i for i in out_feature_indices if not 0 <= i < num_features]
        if bad:
            raise ValueError(
                f'SSDVGGConvCfg: out_feature_indices {bad} are outside the '
                f'{num_features} feature layers (0..{num_features - 1}); '
                'SSD300 on VGG16 uses (22, 34).')
        self.out_feature_indices = tuple(out_feature_indices)

    @staticmethod
    def _vgg_layers(depth: int, with_last_pool: bool, ceil_mode: bool,
                    conv_cfg: Optional[dict]) -> list:
        """The mmcv VGG layer list, then SSD's pool5, fc6 (dilated) and fc7."""
        layers = []
        in_channels = 3
        for stage, num_convs in enumerate(_VGG_STAGE_BLOCKS[depth]):
            channels = 64 * 2**stage if stage < 4 else 512
            for _ in range(num_convs):
                layers.append(
                    build_conv_layer(
                        conv_cfg, in_channels, channels, 3, padding=1))
                layers.append(nn.ReLU(inplace=True))
                in_channels = channels
            layers.append(
                nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
        if not with_last_pool:
            layers.pop()
        layers += [
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            build_conv_layer(
                conv_cfg, 512, 1024, 3, padding=6, dilation=6),
            nn.ReLU(inplace=True),
            build_conv_layer(conv_cfg, 1024, 1024, 1),
            nn.ReLU(inplace=True),
        ]
        return layers

    @classmethod
    def stock_cfg(cls, cfg: dict) -> dict:
        """Return the stock ``SSDVGG`` config for one of ours (a new dict)."""
        stock = {k: v for k, v in dict(cfg).items()
                 if k not in cls.extra_cfg_keys}
        stock['type'] = cls.stock_type
        return stock

    def forward(
            self,
            x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        outs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.out_feature_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)
