"""SCConv: the self-calibrated convolution of SCNet.

Liu et al., "Improving Convolutional Networks with Self-Calibrated
Convolutions", CVPR 2020; structure and norm placement follow the official
code (MCG-NKU/SCNet, ``scnet.py``)::

    K2(x) = Norm(Conv(AvgPool_r(x)))              calibration, at 1/r size
    gate  = sigmoid(x + Up(K2(x)))               Up: nearest, to x's size
    y     = Norm(Conv_stride(K3(x) * gate))       = K4(K3(x) * gate)
    K3(x) = Norm(Conv(x))

In SCNet the bottleneck splits the channels and feeds one half through this
module; the split lives in the SCNet bottleneck (``SCResNet``), not here.

Channel and size rule. The gate adds ``K2(x)`` to ``x`` and multiplies it
with ``K3(x)``, so K2 and K3 must keep ``x``'s channels and spatial size:
they map ``in_channels -> in_channels`` with stride 1 and "same" padding
``dilation * (k - 1) / 2`` (hence an odd kernel). K4 is the layer's own conv:
``in_channels -> out_channels`` with the requested stride, padding and
dilation. With ``in_channels == out_channels`` and ``padding = dilation``
(SCNet's 3x3 convs) this is exactly the official module; otherwise it is
the same calibration in front of a conv of the requested geometry, so SCConv
is a drop-in for any conv with an odd kernel. Used as ``conv_cfg`` of a whole
ResNet it calibrates every conv, including the 1x1 ones and the 7x7 stem
(K2/K3 then are 1x1 or 7x7 convs on the input); for SCNet proper, which
calibrates half of each 3x3 conv only, use the ``SCResNet`` backbone.

Not foldable: the sigmoid gate makes the layer nonlinear in its input.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import nn
from torch.nn.modules.utils import _pair

from ..registry import MODELS
from ..utils.arg_checks import check_choice, check_int
from .attributes import IntOrPair
from .base import NonFoldableConvMixin


@MODELS.register_module()
class SCConv(NonFoldableConvMixin, nn.Module):
    """Self-calibrated conv, a drop-in for ``nn.Conv2d`` (odd kernels).

    Input (N, C_in, H, W) -> output (N, C_out, H_out, W_out), sizes as for
    ``nn.Conv2d`` with the same arguments.

    Args:
        in_channels (int): Input channels C_in; K2 and K3 keep them.
        out_channels (int): Output channels C_out of K4.
        kernel_size (int | tuple[int, int]): Odd kernel size of K2, K3 and
            K4. Defaults to 3.
        stride (int | tuple[int, int]): Stride of K4. Defaults to 1.
        padding (int | tuple[int, int], optional): Zero padding of K4.
            Defaults to None: "same" padding ``dilation * (k - 1) // 2`` (1
            for SCNet's 3x3 convs; 0, ``nn.Conv2d``'s default, for the 1x1
            convs mmdet/mmseg build without a padding argument). Pass
            ``padding=0`` for an unpadded k > 1 conv.
        dilation (int | tuple[int, int]): Dilation of K2, K3 and K4.
            Defaults to 1.
        groups (int): Groups of K2, K3 and K4. Defaults to 1.
        bias (bool): With a norm every conv is bias-free and the norm's
            shift is the bias; with ``norm_cfg=None`` it gives K4 a bias.
            Defaults to False.
        pooling_r (int): Down-sampling rate of K2's average pooling (SCNet:
            4). A map smaller than ``pooling_r`` is pooled with a window of
            its own size, and the calibration is interpolated back to the
            input's size. Defaults to 4.
        norm_cfg (dict, optional): Norm after each of K2, K3, K4 (official:
            BN); None for none. Defaults to ``dict(type='BN')``.
        padding_mode (str): Only ``'zeros'``. Defaults to ``'zeros'``.

    Raises:
        ValueError: an even kernel, ``pooling_r < 1``, another padding mode,
            a bad ``norm_cfg``.

    Example:
        >>> import torch
        >>> from mmcv.cnn import build_conv_layer
        >>> conv = build_conv_layer(dict(type='SCConv'), 8, 16, 3,
        ...                         stride=2, padding=1)
        >>> conv(torch.randn(2, 8, 12, 12)).shape
        torch.Size([2, 16, 6, 6])
    """

    fold_unsupported_reason = (
        'the self-calibration gate sigmoid(x + up(K2(x))) multiplies K3(x), '
        'a nonlinear function of the input that no plain conv computes; '
        'keep SCConv at deployment (its BN layers can still be fused into '
        'its own convs).')
    from_conv_unsupported_reason = (
        'the gate sigmoid(x + up(K2(x))) depends on the input and is never '
        'constant, so no SCConv equals a plain conv; train it from its own '
        'init (or use the SCResNet backbone with its released weights).')

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair = 3,
                 stride: IntOrPair = 1,
                 padding: Optional[IntOrPair] = None,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 pooling_r: int = 4,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 padding_mode: str = 'zeros') -> None:
        super().__init__()
        if padding is None:
            padding = tuple(d * (k - 1) // 2 for k, d in zip(
                _pair(kernel_size), _pair(dilation)))
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(
                f'SCConv: kernel_size={self.kernel_size} must be odd in both '
                'dimensions: the calibration convs K2 and K3 must keep the '
                'input size with symmetric "same" padding. Use an odd kernel '
                '(e.g. 3) or a plain conv for this layer.')
        check_int(pooling_r, 'pooling_r', 'SCConv', low=1,
                  hint='SCNet uses 4')
        check_choice(padding_mode, 'padding_mode', 'SCConv', ('zeros', ))
        if norm_cfg is not None and not isinstance(norm_cfg, dict):
            raise ValueError(
                f'SCConv: norm_cfg must be a dict such as dict(type="BN") or '
                f'None, got {norm_cfg!r}.')
        self.pooling_r = pooling_r
        self.norm_cfg = norm_cfg
        self.padding_mode = padding_mode
        self.with_bias = bias
        same = tuple(d * (k - 1) // 2
                     for k, d in zip(self.kernel_size, self.dilation))
        # Sequential indices match the official checkpoints' keys
        # (k2.1.weight, k2.2.running_mean, k3.0.weight, ...).
        self.k2 = nn.Sequential(
            nn.AvgPool2d(kernel_size=pooling_r, stride=pooling_r),
            *self._conv_norm(in_channels, 1, same, conv_bias=False))
        self.k3 = nn.Sequential(
            *self._conv_norm(in_channels, 1, same, conv_bias=False))
        self.k4 = nn.Sequential(*self._conv_norm(
            out_channels, self.stride, self.padding,
            conv_bias=bias and norm_cfg is None))
        self.init_weights()

    def _conv_norm(self, out_channels: int, stride: IntOrPair,
                   padding: Tuple[int, int], conv_bias: bool) -> list:
        layers = [
            nn.Conv2d(self.in_channels, out_channels, self.kernel_size,
                      stride=stride, padding=padding,
                      dilation=self.dilation, groups=self.groups,
                      bias=conv_bias)
        ]
        if self.norm_cfg is not None:
            layers.append(build_norm_layer(self.norm_cfg, out_channels)[1])
        return layers

    def init_weights(self) -> None:
        """SCNet's initialisation: kaiming-normal (fan_out, ReLU) convs,
        norms at weight 1, bias 0. ``ConvModule`` skips its own
        ``kaiming_init`` for a conv with this method."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode='fan_out', nonlinearity='relu')
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif getattr(module, 'weight', None) is not None and \
                    module is not self:
                nn.init.ones_(module.weight)
                if getattr(module, 'bias', None) is not None:
                    nn.init.zeros_(module.bias)

    def calibration(self, x: torch.Tensor) -> torch.Tensor:
        """``K2(x)`` at pooled size: pool, conv, norm."""
        height, width = x.shape[2:]
        if height >= self.pooling_r and width >= self.pooling_r:
            pooled = self.k2[0](x)
        else:
            window = (min(self.pooling_r, height), min(self.pooling_r, width))
            pooled = F.avg_pool2d(x, kernel_size=window, stride=window)
        for layer in self.k2[1:]:
            pooled = layer(pooled)
        return pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        calibration = F.interpolate(self.calibration(x), size=x.shape[2:])
        gate = torch.sigmoid(x + calibration)
        return self.k4(self.k3(x) * gate)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', pooling_r={self.pooling_r}'
