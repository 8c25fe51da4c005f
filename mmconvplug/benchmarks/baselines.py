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
* :class:`EagerOps`: our DO-Conv / RefConv / CondConv with the fused CPU
  kernels off (rows ``DOConv-eager``, ``RefConv-eager``, ``CondConv-eager``,
  measured when named): the eager compositions (CondConv: the ``mm`` mixing
  the experts) those kernels replace, in the same run.
* :class:`CondConvPath`: our CondConv computing the batch one fixed way,
  rows ``CondConv-<path>`` (``--variants CondConv-grouped CondConv-unfold``
  reproduces the measurements behind CondConv's ``strategy='auto'`` rule).
  Besides the layer's two paths (``grouped``, ``unfold``) it offers two
  formulations the layer no longer ships: :func:`cond_conv_per_example`
  (one conv per example) and :func:`cond_conv_mix_outputs` (the experts
  stacked into one conv, then the outputs mixed).
"""
import functools
import importlib
import importlib.util
import os.path as osp
import sys
import types
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmconvplug.convs import CondConv, cpu_kernels
from mmconvplug.convs.cond_conv_ops import cond_conv_grouped, cond_conv_unfold

#: Row names in the layer benchmark.
PUBLIC_DO_CONV = 'DOConv-public-style'
TIMM_COND_CONV = 'timm-CondConv2d'
#: ``CondConv-<path>`` rows (:class:`CondConvPath`), measured when named.
COND_CONV_PATH_ROWS = tuple(
    f'CondConv-{path}'
    for path in ('grouped', 'unfold', 'per_example', 'mix_outputs'))


#: ``<variant>-eager`` rows (:class:`EagerOps`), measured when named.
EAGER_OPS_ROWS = ('DOConv-eager', 'RefConv-eager', 'CondConv-eager')


class EagerOps(nn.Module):
    """A DOConv / RefConv / CondConv whose compositions take the eager ops
    (:func:`mmconvplug.convs.cpu_kernels.eager_ops`): the cost of what the
    fused CPU kernels replace. The backward follows its forward's path.
    It has ``compose_kernel`` when the layer has one.

    Args:
        layer (nn.Module): The variant, used as it is (same tensors).
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        if hasattr(layer, 'compose_kernel'):
            self.compose_kernel = self._compose_kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with cpu_kernels.eager_ops():
            return self.layer(x)

    def _compose_kernel(self) -> torch.Tensor:
        with cpu_kernels.eager_ops():
            return self.layer.compose_kernel()


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

    def compose_kernel(self) -> torch.Tensor:
        """The public composition: ``einsum('ims,ois->oim', D + I, W)``,
        shape (C_out, C_in, k, k)."""
        D = self.D + self.D_diag
        kernel = torch.einsum('ims,ois->oim', D, self.W)
        return kernel.reshape(self.kernel_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.compose_kernel(),
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


def cond_conv_per_example(x: torch.Tensor, kernels: torch.Tensor,
                          bias: Optional[torch.Tensor],
                          stride: Tuple[int, int], padding: Tuple[int, int],
                          dilation: Tuple[int, int],
                          groups: int) -> torch.Tensor:
    """``y_n = conv(x_n, K_n) + b_n``, one dense conv per example.

    Args:
        x (Tensor): Input, shape (N, C_in, H, W), N >= 1.
        kernels (Tensor): Per-example kernels, shape
            (N, C_out, C_in / groups, kh, kw).
        bias (Tensor, optional): Per-example biases, shape (N, C_out).
        stride, padding, dilation (tuple[int, int]): As for ``F.conv2d``.
        groups (int): Groups of each example's conv.

    Returns:
        Tensor: shape (N, C_out, H_out, W_out).
    """
    # split/unbind (not indexing): their backward concatenates the
    # examples' gradients instead of summing N zero-padded full copies.
    biases = bias.unbind(0) if bias is not None else [None] * len(x)
    return torch.cat([
        F.conv2d(example, kernel, example_bias, stride, padding, dilation,
                 groups) for example, kernel, example_bias in zip(
                     x.split(1, dim=0), kernels.unbind(0), biases)
    ], dim=0)


def cond_conv_mix_outputs(x: torch.Tensor, routing: torch.Tensor,
                          weight: torch.Tensor, bias: Optional[torch.Tensor],
                          stride: Tuple[int, int], padding: Tuple[int, int],
                          dilation: Tuple[int, int],
                          groups: int) -> torch.Tensor:
    """Conv the batch once with the ``E`` experts stacked as one conv of
    ``E * C_out`` outputs, then mix the outputs with ``r`` (exact by
    linearity of the conv in its kernel): E times the arithmetic, no
    per-example kernels.

    Args:
        x (Tensor): Input, shape (N, C_in, H, W).
        routing (Tensor): ``r(x)``, shape (N, E).
        weight (Tensor): Expert kernels, shape (E, C_out, C_in / groups,
            kh, kw).
        bias (Tensor, optional): Expert biases, shape (E, C_out).
        stride, padding, dilation (tuple[int, int]): As for ``F.conv2d``.
        groups (int): Groups of every expert.

    Returns:
        Tensor: shape (N, C_out, H_out, W_out).
    """
    experts, out_channels = weight.shape[:2]
    out_per_group = out_channels // groups
    # Stack the experts group-major, so that one conv with ``groups``
    # groups gives, for group g, the E experts' outputs side by side.
    stacked = weight.view(experts, groups, out_per_group,
                          *weight.shape[2:]).transpose(0, 1)
    stacked = stacked.reshape(groups * experts * out_per_group,
                              *weight.shape[2:])
    out = F.conv2d(x, stacked, None, stride, padding, dilation, groups)
    out_h, out_w = out.shape[2:]
    # sum_e r[b, e] out[b, g, e, :]: a (1 x E) @ (E x O*H*W) matmul per
    # example and group (ONNX MatMul, opset 11; no Einsum).
    out = out.reshape(-1, groups, experts, out_per_group * out_h * out_w)
    mixed = torch.matmul(routing[:, None, None, :], out)
    mixed = mixed.reshape(-1, out_channels, out_h, out_w)
    if bias is not None:
        mixed = mixed + (routing @ bias)[:, :, None, None]
    return mixed


class CondConvPath(nn.Module):
    """A CondConv layer computing every batch with one fixed ``path``.

    Args:
        layer (CondConv): The layer whose routing and experts are used.
        path (str): ``'grouped'``, ``'unfold'``, ``'per_example'`` or
            ``'mix_outputs'``.

    Raises:
        ValueError: an unknown ``path``.
    """

    PATHS = ('grouped', 'unfold', 'per_example', 'mix_outputs')

    def __init__(self, layer: CondConv, path: str) -> None:
        super().__init__()
        if path not in self.PATHS:
            raise ValueError(f'CondConvPath: path={path!r} is not one of '
                             f'{self.PATHS}.')
        self.layer = layer
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        geometry = (layer.stride, layer.padding, layer.dilation, layer.groups)
        routing = layer.routing_weights(x)
        if self.path == 'mix_outputs':
            return cond_conv_mix_outputs(x, routing, layer.weight, layer.bias,
                                         *geometry)
        kernels, bias = layer.mixed_kernels(routing)
        if self.path == 'unfold':
            return cond_conv_unfold(x, kernels, bias, *geometry,
                                    kernel_size=layer.kernel_size)
        path = dict(grouped=cond_conv_grouped,
                    per_example=cond_conv_per_example)[self.path]
        return path(x, kernels, bias, *geometry)
