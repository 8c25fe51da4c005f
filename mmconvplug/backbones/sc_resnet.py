"""SCResNet: SCNet-50/101 (and v1d) as an mmdet/mmseg backbone.

Subclasses mmdet's ``ResNet`` with :class:`SCBottleneck` in
``arch_settings``, so the stem, ``frozen_stages``, ``norm_eval``,
``out_indices``, ``strides``/``dilations``, ``deep_stem``/``avg_down``,
``conv_cfg`` and ``init_cfg`` behave exactly as for mmdet's ResNet. It also
accepts mmseg's ``contract_dilation`` and ``multi_grid`` so DeepLab configs
(``ResNetV1c`` with ``dilations=(1, 1, 2, 4)``) swap it in directly.

Registered as ``SCResNet`` / ``SCResNetV1d`` (mmdet already has a *detector*
called ``SCNet``, so the backbone does not reuse that name).
"""
from typing import Optional, Sequence

from mmdet.models.backbones.resnet import ResNet

from ..registry import MODELS
from .sc_bottleneck import SCBottleneck, SCResLayer


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
        if not 1 <= num_stages <= 4 or max(out_indices) >= num_stages:
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

    The official ``scnet50_v1d`` (80.47 top-1 vs 77.81 for SCNet-50).
    """

    def __init__(self, **kwargs) -> None:
        for name in ('deep_stem', 'avg_down', 'avd'):
            if name in kwargs:
                raise ValueError(
                    f'SCResNetV1d: {name} is fixed to True by the v1d '
                    f'variant; remove it, or use type="SCResNet" with '
                    f'{name}={kwargs[name]!r}.')
        super().__init__(deep_stem=True, avg_down=True, avd=True, **kwargs)
