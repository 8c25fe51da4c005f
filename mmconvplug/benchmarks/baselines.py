"""Public reference implementations the layer benchmark measures ours against.

Not registered, not exported: they exist so ``tools/benchmark.py layers``
can put the public formulation of a layer in the same run as ours.

* :class:`PublicStyleDOConv` (``--public-baseline``): DO-Conv composed as
  the authors' released layer does (``torch.einsum('ims,ois->oim', D, W)``
  each call, autograd's default backward).
* :class:`TimmCondConv`: timm's ``CondConv2d`` (mixed kernel, grouped conv
  with ``groups = batch``) with the paper's routing (global average pool,
  linear, sigmoid), as timm's ``CondConvResidual`` computes it; measured
  whenever timm is installed (``pip install mmconvplug[bench]``).
"""
import functools
import importlib
import importlib.util
import os.path as osp
import sys
import types
from typing import Optional

import torch
from torch import nn

#: Row names in the layer benchmark.
PUBLIC_DO_CONV = 'DOConv-public-style'
TIMM_COND_CONV = 'timm-CondConv2d'


#: Where timm's layer files are loaded when ``import timm`` fails.
_TIMM_LAYERS = '_mmconvplug_timm_layers'


@functools.lru_cache(maxsize=None)
def timm_cond_conv2d() -> Optional[type]:
    """timm's ``CondConv2d`` class, or None when timm is not installed.

    ``import timm`` imports its models, which need torchvision; the layer
    file itself needs only torch. When the package import fails for a
    missing dependency, timm's own ``layers/cond_conv2d.py`` (and the few
    helper files it imports) is loaded from the installed timm without the
    package ``__init__``, so the benchmark still measures timm's code.
    """
    try:
        from timm.layers import CondConv2d
        return CondConv2d
    except ImportError:
        pass
    try:
        spec = importlib.util.find_spec('timm')
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        return None
    layers = osp.join(osp.dirname(spec.origin), 'layers')
    if _TIMM_LAYERS not in sys.modules:
        package = types.ModuleType(_TIMM_LAYERS)
        package.__path__ = [layers]
        sys.modules[_TIMM_LAYERS] = package
    try:
        module = importlib.import_module(f'{_TIMM_LAYERS}.cond_conv2d')
    except ImportError:
        return None
    return module.CondConv2d


def timm_available() -> bool:
    """True when timm's ``CondConv2d`` can be loaded."""
    return timm_cond_conv2d() is not None


class PublicStyleDOConv(nn.Module):
    """DO-Conv (groups=1) composed the way the public reference code does.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Square kernel side.
        stride (int): Stride.
        padding (int): Zero padding.
        dilation (int): Dilation.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int, padding: int, dilation: int) -> None:
        super().__init__()
        taps = kernel_size * kernel_size
        self.kernel_shape = (out_channels, in_channels, kernel_size,
                             kernel_size)
        self.conv_args = dict(stride=stride, padding=padding,
                              dilation=dilation)
        self.W = nn.Parameter(
            torch.randn(out_channels, in_channels, taps) * 0.01)
        self.D = nn.Parameter(torch.zeros(in_channels, taps, taps))
        self.register_buffer('D_diag',
                             torch.eye(taps).repeat(in_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        D = self.D + self.D_diag
        kernel = torch.einsum('ims,ois->oim', D, self.W)
        return nn.functional.conv2d(x, kernel.reshape(self.kernel_shape),
                                    **self.conv_args)


class TimmCondConv(nn.Module):
    """timm's ``CondConv2d`` behind the CondConv paper's routing function.

    ``r(x) = sigmoid(W_r GAP(x) + b_r)``, then timm mixes the experts per
    example and runs one grouped conv over the batch.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation:
            As :class:`PublicStyleDOConv`.
        groups (int): Groups. Defaults to 1.
        num_experts (int): Experts. Defaults to 4.

    Raises:
        ImportError: timm is not installed.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int, padding: int, dilation: int, groups: int = 1,
                 num_experts: int = 4) -> None:
        super().__init__()
        CondConv2d = timm_cond_conv2d()
        if CondConv2d is None:
            raise ImportError('TimmCondConv needs timm: pip install '
                              '"mmconvplug[bench]" (or pip install timm).')
        self.routing = nn.Linear(in_channels, num_experts)
        self.conv = CondConv2d(in_channels, out_channels, kernel_size,
                               stride=stride, padding=padding,
                               dilation=dilation, groups=groups, bias=False,
                               num_experts=num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = torch.sigmoid(self.routing(x.mean(dim=(2, 3))))
        return self.conv(x, routing)
