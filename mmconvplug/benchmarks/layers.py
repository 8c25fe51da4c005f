"""Layer benchmark: each conv variant against ``nn.Conv2d`` of the same shape.

    mmconvplug benchmark layers
        [--shapes mission|imagenet|mobilenet_ssd|condconv|all]
        [--json OUT] [--repeats N] [--threads T] [--variants NAME ...]
        [--public-baseline] [--cpu-time] [--quick] [--device cpu|cuda]
        [--markdown]

For every shape and variant it reports, as ratios to a plain ``nn.Conv2d``
measured in the same run:

* train step: forward + backward (gradient of a fixed random tensor) of a
  layer inside a network, i.e. input and parameter gradients, cleared
  before each step;
* eval forward, unfolded (the variant in eval mode under ``no_grad``, its
  kernel cache warm) and folded (``fold()``'s plain conv; absent for
  variants that cannot fold);
* trainable parameters;
* peak memory of one train step.

Timing and memory come from :mod:`mmconvplug.analysis`: medians of
interleaved repeats (``--cpu-time``: process CPU time, for a shared machine
with ``--threads 1``; CUDA events on a GPU), and the peak of one train
step above what was alive at its start (CPU: torch.profiler's memory
timeline; CUDA: ``max_memory_allocated``).

The variants are every registered conv variant
(:func:`mmconvplug.convs.base.conv_variants`) with its defaults (CondConv: 4
experts); one that refuses a shape is reported, not fatal. Public
formulations run in the same process as extra rows: timm's ``CondConv2d``
whenever timm is installed, the public DO-Conv composition with
``--public-baseline``, and CondConv with one fixed path when named
(``--variants CondConv-grouped CondConv-unfold CondConv-per_example
CondConv-mix_outputs``; :mod:`.baselines`).
"""
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence

import torch
from mmcv.cnn import build_conv_layer
from torch import nn

from mmconvplug.analysis import (
    count_parameters,
    format_table,
    interleaved_medians,
    peak_memory_bytes,
)
from mmconvplug.convs.base import conv_variants, is_foldable

from .baselines import (
    COND_CONV_PATH_ROWS,
    PUBLIC_DO_CONV,
    TIMM_COND_CONV,
    CondConvPath,
    PublicStyleDOConv,
    TimmCondConv,
    timm_available,
)


@dataclass(frozen=True)
class ConvShape:
    """One conv layer and its input, as the benchmark builds it."""

    name: str
    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel_size: int = 3
    stride: int = 1
    dilation: int = 1
    groups: int = 1

    @property
    def padding(self) -> int:
        return self.dilation * (self.kernel_size // 2)


#: ResNet-50 stage 3x3 convs for an 800x1333 detection input at batch 2
#: (strides 4..32), and SSD300 VGG-16 maps (conv4_3 at 38x38, the dilated
#: fc6 at 19x19), batch 2.
MISSION_SHAPES = (
    ConvShape('r50_stage1_64@200x334', 2, 64, 64, 200, 334),
    ConvShape('r50_stage2_128@100x167', 2, 128, 128, 100, 167),
    ConvShape('r50_stage3_256@50x84', 2, 256, 256, 50, 84),
    ConvShape('r50_stage4_512@25x42', 2, 512, 512, 25, 42),
    ConvShape('ssd_conv4_3_512@38x38', 2, 512, 512, 38, 38),
    ConvShape('ssd_fc6_512to1024@19x19_d6', 2, 512, 1024, 19, 19,
              dilation=6),
)

#: ResNet stage 3x3 convs for a 224x224 ImageNet input at batch 8.
IMAGENET_SHAPES = (
    ConvShape('in_stage1_64@56x56', 8, 64, 64, 56, 56),
    ConvShape('in_stage2_128@28x28', 8, 128, 128, 28, 28),
    ConvShape('in_stage3_256@14x14', 8, 256, 256, 14, 14),
    ConvShape('in_stage4_512@7x7', 8, 512, 512, 7, 7),
)

#: The CondConv layers of CondConv-MobileNetV1 SSD300 (blocks 10-13 at
#: batch 8): depthwise 3x3 and pointwise 1x1 convs on the 19x19 and 10x10
#: maps, 512-1024 channels.
MOBILENET_SSD_SHAPES = (
    ConvShape('mnv1ssd_dw512@19x19', 8, 512, 512, 19, 19, groups=512),
    ConvShape('mnv1ssd_pw512@19x19', 8, 512, 512, 19, 19, kernel_size=1),
    ConvShape('mnv1ssd_pw512to1024@10x10', 8, 512, 1024, 10, 10,
              kernel_size=1),
    ConvShape('mnv1ssd_dw1024@10x10', 8, 1024, 1024, 10, 10, groups=1024),
    ConvShape('mnv1ssd_pw1024@10x10', 8, 1024, 1024, 10, 10,
              kernel_size=1),
)

#: Tiny shapes for ``--quick`` (a smoke run, not a measurement).
QUICK_SHAPES = (
    ConvShape('quick_8@12x10', 1, 8, 8, 12, 10),
    ConvShape('quick_16@6x5', 2, 16, 16, 6, 5),
)

SHAPE_SETS = {
    'mission': MISSION_SHAPES,
    'imagenet': IMAGENET_SHAPES,
    'mobilenet_ssd': MOBILENET_SSD_SHAPES,
    'condconv': IMAGENET_SHAPES + MOBILENET_SSD_SHAPES,
    'all': MISSION_SHAPES + IMAGENET_SHAPES,
}

def build_layer(shape: ConvShape, name: Optional[str]) -> nn.Module:
    """A plain conv (``name=None``), a baseline, or a registered variant
    built through ``build_conv_layer`` with its defaults."""
    geometry = dict(stride=shape.stride, padding=shape.padding,
                    dilation=shape.dilation)
    if name == PUBLIC_DO_CONV:
        if shape.groups != 1:
            raise ValueError(f'{PUBLIC_DO_CONV} is written for groups=1.')
        return PublicStyleDOConv(shape.in_channels, shape.out_channels,
                                 shape.kernel_size, **geometry)
    if name == TIMM_COND_CONV:
        return TimmCondConv(shape.in_channels, shape.out_channels,
                            shape.kernel_size, groups=shape.groups,
                            **geometry)
    if name in COND_CONV_PATH_ROWS:
        layer = build_layer(shape, 'CondConv')
        return CondConvPath(layer, name[len('CondConv-'):])
    return build_conv_layer(
        None if name is None else dict(type=name), shape.in_channels,
        shape.out_channels, shape.kernel_size, groups=shape.groups,
        bias=False, **geometry)


def clear_gradients(layer: nn.Module, x: torch.Tensor) -> None:
    x.grad = None
    for param in layer.parameters():
        param.grad = None


def train_step(layer: nn.Module, x: torch.Tensor,
               grad_out: torch.Tensor) -> None:
    """Forward + backward (input and parameter gradients, fresh)."""
    clear_gradients(layer, x)
    layer(x).backward(grad_out)


def eval_forward(layer: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        layer(x)


def peak_train_bytes(layer: nn.Module, x: torch.Tensor,
                     grad_out: torch.Tensor) -> int:
    """Peak bytes of one train step above what was alive before it."""
    clear_gradients(layer, x)
    return peak_memory_bytes(lambda: layer(x).backward(grad_out),
                             cuda=x.is_cuda)


def benchmark_shape(shape: ConvShape,
                    variants: Sequence[str],
                    repeats: int,
                    clock: Callable[[], float] = time.perf_counter,
                    device: str = 'cpu') -> List[dict]:
    """Measure every variant and the plain conv on one shape."""
    cuda = device.startswith('cuda')
    # A layer inside a network: its input needs a gradient too.
    x = torch.randn(shape.batch, shape.in_channels, shape.height,
                    shape.width, device=device, requires_grad=True)
    plain = build_layer(shape, None).to(device)
    grad_out = torch.randn_like(plain(x).detach())
    layers, errors = {}, {}
    for name in variants:
        try:
            layers[name] = build_layer(shape, name).to(device)
        except (ValueError, TypeError, RuntimeError) as err:
            errors[name] = f'{type(err).__name__}: {err}'

    train_calls = {'plain': lambda: train_step(plain, x, grad_out)}
    for name, layer in layers.items():
        train_calls[name] = (
            lambda layer=layer: train_step(layer, x, grad_out))
    train_s = interleaved_medians(train_calls, repeats, clock, cuda=cuda)

    plain.eval()
    eval_calls = {'plain': lambda: eval_forward(plain, x)}
    for name, layer in layers.items():
        layer.eval()
        eval_calls[name] = lambda layer=layer: eval_forward(layer, x)
        if is_foldable(layer):
            eval_calls[name + ':folded'] = (
                lambda conv=layer.fold(): eval_forward(conv, x))
    eval_s = interleaved_medians(eval_calls, repeats, clock, cuda=cuda)

    plain.train()
    plain_peak = peak_train_bytes(plain, x, grad_out)
    params_plain = count_parameters(plain, trainable_only=True)
    rows = []
    for name in variants:
        row = dict(shape=asdict(shape), variant=name)
        if name in errors:
            row['error'] = errors[name]
            rows.append(row)
            continue
        layer = layers[name].train()
        peak = peak_train_bytes(layer, x, grad_out)
        folded = eval_s.get(name + ':folded')
        row.update(
            params=count_parameters(layer, trainable_only=True),
            params_plain=params_plain,
            train_ms=train_s[name] * 1e3,
            train_ms_plain=train_s['plain'] * 1e3,
            train_ratio=train_s[name] / train_s['plain'],
            eval_unfolded_ms=eval_s[name] * 1e3,
            eval_folded_ms=None if folded is None else folded * 1e3,
            eval_plain_ms=eval_s['plain'] * 1e3,
            eval_unfolded_ratio=eval_s[name] / eval_s['plain'],
            eval_folded_ratio=(None if folded is None else folded /
                               eval_s['plain']),
            peak_train_mb=peak / 2**20,
            peak_train_mb_plain=plain_peak / 2**20,
            peak_train_ratio=peak / plain_peak if plain_peak else None,
        )
        rows.append(row)
    return rows


def _ratio(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.2f}'


def format_results(rows: Sequence[dict], markdown: bool = False) -> str:
    """The ratios as a table (text, or Markdown for the docs)."""
    header = ['shape', 'variant', 'params', 'train', 'eval', 'folded',
              'peak MB', 'mem']
    cells = []
    for row in rows:
        if 'error' in row:
            cells.append([row['shape']['name'], row['variant'],
                          row['error'][:60], '', '', '', '', ''])
            continue
        cells.append([
            row['shape']['name'], row['variant'], row['params'],
            _ratio(row['train_ratio']), _ratio(row['eval_unfolded_ratio']),
            _ratio(row['eval_folded_ratio']), f'{row["peak_train_mb"]:.2f}',
            _ratio(row['peak_train_ratio'])
        ])
    return format_table(header, cells, markdown=markdown)


def selected_variants(names: Optional[Sequence[str]],
                      public_baseline: bool) -> List[str]:
    """The rows to measure: every registered variant (or ``names``), then
    the baselines (timm's CondConv2d when installed; the public DO-Conv with
    ``public_baseline``; a ``CondConv-<path>`` row when named).

    Raises:
        ValueError: a name is neither a registered variant nor a baseline,
            or names timm's CondConv2d without timm installed.
    """
    known = list(conv_variants()) + [TIMM_COND_CONV, PUBLIC_DO_CONV,
                                     *COND_CONV_PATH_ROWS]
    if names:
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f'--variants: unknown {unknown}; choose from '
                             f'{known}.')
        if TIMM_COND_CONV in names and not timm_available():
            raise ValueError(
                f'--variants {TIMM_COND_CONV} needs timm: pip install '
                '"mmconvplug[bench]" (or pip install timm).')
        wanted = set(names)
    else:
        wanted = set(known) - {PUBLIC_DO_CONV, *COND_CONV_PATH_ROWS}
        if not timm_available():
            wanted.discard(TIMM_COND_CONV)
    if public_baseline:
        wanted.add(PUBLIC_DO_CONV)
    return [name for name in known if name in wanted]
