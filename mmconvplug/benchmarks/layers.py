"""Layer benchmark: each conv variant against ``nn.Conv2d`` of the same shape.

    mmconvplug benchmark layers
        [--shapes mission|imagenet|mobilenet_ssd|condconv|composition|all]
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
* peak memory of one train step;
* for variants that compose their kernel (DO-Conv, RefConv, the public
  DO-Conv): the composition's forward + backward alone, in ms and as a
  ratio to the memory floor of a kernel-sized tensor (two fresh copies and
  one in-place add, timed in the same rounds: :func:`memory_floor`); both
  timed warm, each right after an untimed call of itself.

Timing and memory come from :mod:`mmconvplug.analysis`: medians of
interleaved repeats (a shuffled order each round), each ratio with the
interquartile range of its per-round ratios (``--cpu-time``: process CPU
time, for a shared machine with ``--threads 1``; CUDA events on a GPU),
and the peak of one train step above what was alive at its start (CPU:
torch.profiler's memory timeline; CUDA: ``max_memory_allocated``).

The variants are every registered conv variant
(:func:`mmconvplug.convs.base.conv_variants`) with its defaults (CondConv: 4
experts); one that refuses a shape is reported, not fatal. Public
formulations run in the same process as extra rows: timm's ``CondConv2d``
whenever timm is installed, the public DO-Conv composition with
``--public-baseline``, and CondConv with one fixed path when named
(``--variants CondConv-grouped CondConv-unfold CondConv-per_example
CondConv-mix_outputs``), and our DO-Conv / RefConv with the fused CPU
kernels off when named (``--variants DOConv-eager RefConv-eager``;
:mod:`.baselines`).
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
    interleaved_samples,
    peak_memory_bytes,
    ratio_spread,
    spread,
)
from mmconvplug.convs.base import conv_variants, is_foldable

from .baselines import (
    COND_CONV_PATH_ROWS,
    EAGER_OPS_ROWS,
    PUBLIC_DO_CONV,
    TIMM_COND_CONV,
    CondConvPath,
    EagerOps,
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

#: The shapes of the DO-Conv / RefConv composition targets: the ImageNet
#: stages at batch 8, SSD300's conv4_3 and a 1024-channel 3x3 at fc6's map
#: size (19x19), batch 2.
COMPOSITION_SHAPES = IMAGENET_SHAPES + (
    ConvShape('ssd_conv4_3_512@38x38', 2, 512, 512, 38, 38),
    ConvShape('c1024@19x19', 2, 1024, 1024, 19, 19),
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
    'composition': COMPOSITION_SHAPES,
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
    if name in EAGER_OPS_ROWS:
        return EagerOps(build_layer(shape, name[:-len('-eager')]))
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


def composition_step(layer: nn.Module, grad_kernel: torch.Tensor) -> None:
    """The kernel composition alone: ``compose_kernel()`` forward and
    backward (gradients of ``grad_kernel``, fresh)."""
    for param in layer.parameters():
        param.grad = None
    layer.compose_kernel().backward(grad_kernel)


def memory_floor_calls(kernel: torch.Tensor) -> dict:
    """The memory traffic a kernel composition cannot avoid, as timed calls
    on a kernel-sized tensor: a fresh copy (``clone``: read one tensor,
    write a new one) and an in-place add (read and write one).

    A composition's forward reads its sources and writes the kernel (one
    clone's worth); its backward writes the source gradient (another) and
    reads the incoming gradient with the sources once more for the small
    gradient (an add's worth), so :func:`memory_floor` is two clones plus
    one add.
    """
    source = kernel.detach().clone()
    return {'floor:clone': source.clone,
            'floor:add': lambda: source.add_(1.0)}


def memory_floor(samples: dict) -> list:
    """Per round: two clones plus one in-place add (seconds)."""
    return [2 * clone + add for clone, add in zip(samples['floor:clone'],
                                                   samples['floor:add'])]


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
    # The kernel composition alone (variants that compose one), with the
    # memory floor of a kernel-sized tensor, in the same rounds.
    grad_kernel = torch.randn_like(plain.weight)
    for name, layer in layers.items():
        if hasattr(layer, 'compose_kernel'):
            train_calls[name + ':compose'] = (
                lambda layer=layer: composition_step(layer, grad_kernel))
    if any(name.endswith(':compose') for name in train_calls):
        train_calls.update(memory_floor_calls(plain.weight))
    # The composition and the floor are timed warm (each right after an
    # untimed call of itself): their own cost, not that of following a
    # whole train step; the train steps include the composition as it runs.
    warm = [name for name in train_calls
            if name.endswith(':compose') or name.startswith('floor:')]
    train_s = interleaved_samples(train_calls, repeats, clock, cuda=cuda,
                                  warm=warm)

    plain.eval()
    eval_calls = {'plain': lambda: eval_forward(plain, x)}
    for name, layer in layers.items():
        layer.eval()
        eval_calls[name] = lambda layer=layer: eval_forward(layer, x)
        if is_foldable(layer):
            eval_calls[name + ':folded'] = (
                lambda conv=layer.fold(): eval_forward(conv, x))
    eval_s = interleaved_samples(eval_calls, repeats, clock, cuda=cuda)

    plain.train()
    plain_peak = peak_train_bytes(plain, x, grad_out)
    params_plain = count_parameters(plain, trainable_only=True)
    floor = memory_floor(train_s) if 'floor:clone' in train_s else None
    rows = []
    for name in variants:
        row = dict(shape=asdict(shape), variant=name)
        if name in errors:
            row['error'] = errors[name]
            rows.append(row)
            continue
        layer = layers[name].train()
        peak = peak_train_bytes(layer, x, grad_out)
        train_ratio = ratio_spread(train_s[name], train_s['plain'])
        eval_ratio = ratio_spread(eval_s[name], eval_s['plain'])
        folded = eval_s.get(name + ':folded')
        folded_ratio = None if folded is None else ratio_spread(
            folded, eval_s['plain'])
        compose = train_s.get(name + ':compose')
        row.update(
            params=count_parameters(layer, trainable_only=True),
            params_plain=params_plain,
            train_ms=spread(train_s[name]).median * 1e3,
            train_ms_plain=spread(train_s['plain']).median * 1e3,
            train_ratio=train_ratio.median,
            train_ratio_q1=train_ratio.q1,
            train_ratio_q3=train_ratio.q3,
            eval_unfolded_ms=spread(eval_s[name]).median * 1e3,
            eval_folded_ms=(None if folded is None else
                            spread(folded).median * 1e3),
            eval_plain_ms=spread(eval_s['plain']).median * 1e3,
            eval_unfolded_ratio=eval_ratio.median,
            eval_unfolded_ratio_q1=eval_ratio.q1,
            eval_unfolded_ratio_q3=eval_ratio.q3,
            eval_folded_ratio=(None if folded_ratio is None else
                               folded_ratio.median),
            peak_train_mb=peak / 2**20,
            peak_train_mb_plain=plain_peak / 2**20,
            peak_train_ratio=peak / plain_peak if plain_peak else None,
            repeats=repeats,
        )
        if compose is not None:
            floor_ratio = ratio_spread(compose, floor)
            row.update(compose_ms=spread(compose).median * 1e3,
                       compose_floor_ms=spread(floor).median * 1e3,
                       compose_floor_ratio=floor_ratio.median,
                       compose_floor_ratio_q1=floor_ratio.q1,
                       compose_floor_ratio_q3=floor_ratio.q3)
        rows.append(row)
    return rows


def _ratio(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.2f}'


def _with_iqr(row: dict, key: str) -> str:
    """``'median (q1-q3)'`` of a ratio, or ``'n/a'``."""
    if row.get(key) is None:
        return 'n/a'
    if row.get(key + '_q1') is None:
        return _ratio(row[key])
    return (f'{row[key]:.2f} ({row[key + "_q1"]:.2f}-'
            f'{row[key + "_q3"]:.2f})')


def format_results(rows: Sequence[dict], markdown: bool = False) -> str:
    """The ratios as a table (text, or Markdown for the docs): medians over
    the interleaved repeats, the interquartile range of the per-round
    ratios in brackets; ``compose`` is the kernel composition's time (ms)
    and its ratio to the memory floor (:func:`memory_floor`)."""
    header = ['shape', 'variant', 'params', 'train (IQR)', 'eval (IQR)',
              'folded', 'compose ms', 'compose/floor (IQR)', 'peak MB',
              'mem']
    cells = []
    for row in rows:
        if 'error' in row:
            cells.append([row['shape']['name'], row['variant'],
                          row['error'][:60]] + [''] * (len(header) - 3))
            continue
        compose = row.get('compose_ms')
        cells.append([
            row['shape']['name'], row['variant'], row['params'],
            _with_iqr(row, 'train_ratio'),
            _with_iqr(row, 'eval_unfolded_ratio'),
            _ratio(row['eval_folded_ratio']),
            '' if compose is None else f'{compose:.2f}',
            '' if compose is None else _with_iqr(row, 'compose_floor_ratio'),
            f'{row["peak_train_mb"]:.2f}', _ratio(row['peak_train_ratio'])
        ])
    return format_table(header, cells, markdown=markdown)


def selected_variants(names: Optional[Sequence[str]],
                      public_baseline: bool) -> List[str]:
    """The rows to measure: every registered variant (or ``names``), then
    the baselines (timm's CondConv2d when installed; the public DO-Conv with
    ``public_baseline``; a ``CondConv-<path>`` or ``<variant>-eager`` row
    when named).

    Raises:
        ValueError: a name is neither a registered variant nor a baseline,
            or names timm's CondConv2d without timm installed.
    """
    known = list(conv_variants()) + [TIMM_COND_CONV, PUBLIC_DO_CONV,
                                     *COND_CONV_PATH_ROWS, *EAGER_OPS_ROWS]
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
        wanted = set(known) - {PUBLIC_DO_CONV, *COND_CONV_PATH_ROWS,
                                *EAGER_OPS_ROWS}
        if not timm_available():
            wanted.discard(TIMM_COND_CONV)
    if public_baseline:
        wanted.add(PUBLIC_DO_CONV)
    return [name for name in known if name in wanted]
