"""The SCNet bottleneck and the stage that stacks it.

"Improving Convolutional Networks with Self-Calibrated Convolutions"
(Liu et al., CVPR 2020; official code MCG-NKU/SCNet ``scnet.py``).

The bottleneck splits the ResNet bottleneck's width in two halves::

    a = relu(k1(relu(bn1_a(conv1_a(x)))))        k1: plain 3x3 conv + BN
    b = relu(scconv(relu(bn1_b(conv1_b(x)))))    scconv: SCConv (3x3)
    y = relu(bn3(conv3(concat(a, b))) + shortcut(x))

The two 1x1 convs together cost what ResNet's single 1x1 costs, and the 3x3
plain half plus the three 3x3 convs of SCConv (each a quarter-sized) cost
what ResNet's 3x3 costs: SCNet-50 has ResNet-50's parameter count (plus a
few BN affine parameters).

Module names follow the official code (``conv1_a``, ``bn1_a``, ``k1``,
``conv1_b``, ``bn1_b``, ``scconv``, ``conv3``, ``bn3``) so the official
ImageNet checkpoints map onto ours key for key (``SCConv``'s own inner names
are the conv's business).
"""
from typing import Optional, Sequence

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, Sequential
from torch import nn

_STYLES = ('pytorch', 'caffe')


class SCBottleneck(BaseModule):
    """SCNet bottleneck block (``expansion = 4``), mmdet ``Bottleneck`` API.

    Args:
        inplanes: Input channels.
        planes: Bottleneck width; output channels are ``planes * 4``. Each
            half (plain 3x3 and self-calibrated) gets ``planes // 2``.
        stride: Stride of the block.
        dilation: Dilation of the 3x3 convs (DeepLab output stride 8/16).
        downsample: The identity branch's projection, or ``None``.
        style: ``'pytorch'``: the 3x3 convs stride; ``'caffe'``: the 1x1
            convs stride.
        with_cp: Gradient checkpointing (saves memory, costs time).
        conv_cfg: Conv config for the plain convs (1x1s, the plain 3x3 and
            the projection); ``None`` means ``nn.Conv2d``.
        norm_cfg: Norm config for every norm layer, SCConv's included.
        avd: Downsample by a 3x3 average pool after the 3x3 convs instead of
            striding them (SCNet v1d); the pool runs with stride 1 when the
            block does not downsample, as the official code does for the
            first block of a dilated stage.
        pooling_r: SCConv's down-sampling rate of the calibration branch.
        dcn, plugins: Accepted for the mmdet ``ResNet`` signature; must be
            ``None`` (SCConv is not deformable and has no plugin points).
        init_cfg: mmengine init config.
    """

    expansion = 4

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch',
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 avd: bool = False,
                 pooling_r: int = 4,
                 dcn: Optional[dict] = None,
                 plugins: Optional[list] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if style not in _STYLES:
            raise ValueError(f'SCBottleneck: style={style!r} is not one of '
                             f'{_STYLES}; use "pytorch" (stride on the 3x3) '
                             'or "caffe" (stride on the 1x1).')
        if dcn is not None or plugins:
            raise ValueError(
                'SCResNet: dcn and plugins are not supported by the SCNet '
                f'bottleneck (got dcn={dcn!r}, plugins={plugins!r}); leave '
                'them unset (stage_with_dcn all False, plugins=None).')
        if planes % 2:
            raise ValueError(f'SCBottleneck: planes={planes} must be even: '
                             'it is split into two halves.')
        width = planes // 2
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.avd = avd
        conv1_stride = stride if style == 'caffe' else 1
        conv2_stride = 1 if (avd or style == 'caffe') else stride

        self.conv1_a = build_conv_layer(
            conv_cfg, inplanes, width, 1, stride=conv1_stride, bias=False)
        self.norm1_a_name, norm1_a = build_norm_layer(
            norm_cfg, width, postfix='1_a')
        self.add_module(self.norm1_a_name, norm1_a)
        self.conv1_b = build_conv_layer(
            conv_cfg, inplanes, width, 1, stride=conv1_stride, bias=False)
        self.norm1_b_name, norm1_b = build_norm_layer(
            norm_cfg, width, postfix='1_b')
        self.add_module(self.norm1_b_name, norm1_b)

        self.k1 = nn.Sequential(
            build_conv_layer(
                conv_cfg,
                width,
                width,
                3,
                stride=conv2_stride,
                padding=dilation,
                dilation=dilation,
                bias=False),
            build_norm_layer(norm_cfg, width)[1])
        self.scconv = build_conv_layer(
            dict(type='SCConv', pooling_r=pooling_r, norm_cfg=norm_cfg),
            width,
            width,
            3,
            stride=conv2_stride,
            padding=dilation,
            dilation=dilation,
            bias=False)
        self.avd_layer = (nn.AvgPool2d(3, 1 if style == 'caffe' else stride,
                                       padding=1) if avd else None)

        self.conv3 = build_conv_layer(
            conv_cfg, width * 2, planes * self.expansion, 1, bias=False)
        self.norm3_name, norm3 = build_norm_layer(
            norm_cfg, planes * self.expansion, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def norm1_a(self) -> nn.Module:
        """Norm after ``conv1_a`` (``bn1_a`` for BN)."""
        return getattr(self, self.norm1_a_name)

    @property
    def norm1_b(self) -> nn.Module:
        """Norm after ``conv1_b`` (``bn1_b`` for BN)."""
        return getattr(self, self.norm1_b_name)

    @property
    def norm3(self) -> nn.Module:
        """Last norm of the block (zeroed by ``zero_init_residual``)."""
        return getattr(self, self.norm3_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out_a = self.relu(self.norm1_a(self.conv1_a(x)))
        out_b = self.relu(self.norm1_b(self.conv1_b(x)))
        out_a = self.relu(self.k1(out_a))
        out_b = self.relu(self.scconv(out_b))
        if self.avd_layer is not None:
            out_a = self.avd_layer(out_a)
            out_b = self.avd_layer(out_b)
        out = self.norm3(self.conv3(torch.cat([out_a, out_b], dim=1)))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


class SCResLayer(Sequential):
    """One SCNet stage: ``num_blocks`` bottlenecks, the first one strided.

    Like mmdet's/mmseg's ``ResLayer`` (avg-down projection, mmseg's
    ``contract_dilation`` and ``multi_grid`` for DeepLab), plus SCNet v1d's
    ``avd``: the official code average-pools in the first block of every
    stage after the first, even where that block does not stride. With
    ``avg_down`` the projection is ``AvgPool, conv, BN`` in every stage, as
    in the official code (kernel-1 pool where the stage does not stride), so
    official v1d checkpoints load key for key.
    """

    def __init__(self,
                 block: type,
                 inplanes: int,
                 planes: int,
                 num_blocks: int,
                 stride: int = 1,
                 dilation: int = 1,
                 avg_down: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 avd: bool = False,
                 is_first_stage: bool = False,
                 contract_dilation: bool = False,
                 multi_grid: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if multi_grid is not None and len(multi_grid) != num_blocks:
            raise ValueError(
                f'SCResNet: multi_grid={tuple(multi_grid)} needs one dilation '
                f'per block of the last stage ({num_blocks} blocks).')
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != out_channels:
            layers = []
            conv_stride = stride
            if avg_down:
                # As the official code: the pool always comes first, the
                # identity (kernel 1) where the stage does not stride, so
                # the projection is always downsample.1 / .2.
                conv_stride = 1
                layers.append(
                    nn.AvgPool2d(
                        kernel_size=stride,
                        stride=stride,
                        ceil_mode=True,
                        count_include_pad=False))
            layers += [
                build_conv_layer(
                    conv_cfg,
                    inplanes,
                    out_channels,
                    kernel_size=1,
                    stride=conv_stride,
                    bias=False),
                build_norm_layer(norm_cfg, out_channels)[1]
            ]
            downsample = nn.Sequential(*layers)

        if multi_grid is not None:
            dilations = list(multi_grid)
        else:
            first = dilation // 2 if (contract_dilation
                                      and dilation > 1) else dilation
            dilations = [first] + [dilation] * (num_blocks - 1)

        blocks = []
        for index in range(num_blocks):
            first = index == 0
            blocks.append(
                block(
                    inplanes=inplanes if first else out_channels,
                    planes=planes,
                    stride=stride if first else 1,
                    dilation=dilations[index],
                    downsample=downsample if first else None,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    avd=avd and first and (stride > 1 or not is_first_stage),
                    **kwargs))
        super().__init__(*blocks)
