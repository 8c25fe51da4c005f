"""MobileNetV1 backbone for SSD300, with CondConv in chosen blocks.

"CondConv: Conditionally Parameterized Convolutions for Efficient Inference"
(Yang et al., NeurIPS 2019) reports MobileNetV1 SSD300 on COCO (20.3 ->
22.4 mAP with CondConv). The paper puts CondConv in the *later* layers,
where it helps most for its cost; here that is a list of block indices
(``condconv_blocks``) whose depthwise and pointwise convs are built from
``condconv_cfg``. Everything else is a plain MobileNetV1: a strided 3x3 stem
and 13 depthwise-separable blocks (depthwise 3x3 + BN + act, pointwise
1x1 + BN + act).

For SSD300 the outputs are block 10 (512 channels, stride 16: 19x19) and
block 12 (1024 channels, stride 32: 10x10), as in the TensorFlow Object
Detection API's ``ssd_mobilenet_v1``; mmdet's ``SSDNeck`` adds the extra
levels.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import MODELS
from ..utils.arg_checks import check_int, check_positive_number

#: (out_channels, stride) of the 13 depthwise-separable blocks.
_BLOCK_SETTINGS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                   (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
                   (1024, 2), (1024, 1))


@MODELS.register_module()
class MobileNetV1(BaseModule):
    """MobileNetV1 (Howard et al. 2017) with per-block conv configs.

    Args:
        widen_factor: Width multiplier (alpha).
        out_indices: Block indices (0..12) whose outputs are returned; SSD300
            uses ``(10, 12)``; ``-1`` means the stem.
        condconv_blocks: Indices of the blocks whose two convs are built
            from ``condconv_cfg``.
        condconv_cfg: Conv config for those blocks (any registered conv
            works; the CondConv paper uses ``dict(type='CondConv',
            num_experts=8)``).
        conv_cfg: Conv config for every other conv (``None``: nn.Conv2d).
        norm_cfg: Norm config.
        act_cfg: Activation config (TF MobileNetV1 uses ReLU6).
        frozen_stages: Freeze the stem and blocks ``0..frozen_stages-1``
            (``-1``: nothing, ``0``: the stem only).
        norm_eval: Keep BN layers in eval mode while training.
        init_cfg: mmengine init config.
    """

    num_blocks = len(_BLOCK_SETTINGS)

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (10, 12),
                 condconv_blocks: Sequence[int] = (),
                 condconv_cfg: Optional[dict] = dict(
                     type='CondConv', num_experts=8),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg=None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer=['_BatchNorm',
                                                     'GroupNorm'])
            ]
        super().__init__(init_cfg)
        self._check_indices('out_indices', out_indices, allow_stem=True)
        self._check_indices('condconv_blocks', condconv_blocks)
        check_int(frozen_stages, 'frozen_stages', 'MobileNetV1', low=-1,
                  high=self.num_blocks, hint='-1 freezes nothing, 0 the stem')
        check_positive_number(widen_factor, 'widen_factor', 'MobileNetV1')
        self.out_indices = tuple(out_indices)
        self.condconv_blocks = tuple(condconv_blocks)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        def width(channels: int) -> int:
            return max(8, int(round(channels * widen_factor)))

        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        in_channels = width(32)
        self.stem = ConvModule(
            3, in_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
            **common)
        self.blocks = nn.ModuleList()
        for index, (channels, stride) in enumerate(_BLOCK_SETTINGS):
            block_conv_cfg = (
                condconv_cfg if index in self.condconv_blocks else conv_cfg)
            out_channels = width(channels)
            self.blocks.append(
                nn.Sequential(
                    ConvModule(
                        in_channels,
                        in_channels,
                        3,
                        stride=stride,
                        padding=1,
                        groups=in_channels,
                        conv_cfg=block_conv_cfg,
                        **common),
                    ConvModule(
                        in_channels,
                        out_channels,
                        1,
                        conv_cfg=block_conv_cfg,
                        **common)))
            in_channels = out_channels
        self._freeze_stages()

    def _check_indices(self, name: str, indices: Sequence[int],
                       allow_stem: bool = False) -> None:
        low = -1 if allow_stem else 0
        bad = [i for i in indices if not low <= i < self.num_blocks]
        if bad:
            raise ValueError(
                f'MobileNetV1: {name} {bad} are not block indices; use '
                f'{low}..{self.num_blocks - 1}'
                + (' (-1: the stem)' if allow_stem else '') + '.')

    def _freeze_stages(self) -> None:
        frozen = [self.stem] if self.frozen_stages >= 0 else []
        frozen += list(self.blocks[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = [x] if -1 in self.out_indices else []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'MobileNetV1':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
