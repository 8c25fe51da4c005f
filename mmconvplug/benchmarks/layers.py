"""Layer benchmark: each conv variant against ``nn.Conv2d`` of the same shape.

    python tools/benchmark.py layers [--shapes mission|imagenet|all]
        [--json OUT] [--repeats N] [--threads T] [--variants NAME ...]
        [--public-baseline] [--cpu-time] [--quick]

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

Timing: ``time.perf_counter`` (``--cpu-time``: ``time.process_time``, for
a shared machine, with ``--threads 1``) around each call; every repeat runs
the plain conv and all variants back to back (interleaved), after one
warm-up call each, and the figures are medians over repeats, so slow drift
of a shared machine hits every column alike. Memory (CPU):
``torch.profiler``'s memory timeline (``profile_memory=True``, exported with
``export_memory_timeline``) of one train step; the peak of all live tensor
bytes minus those alive at its start (parameters, input) is reported.

Variants are looked up by registry name, so the benchmark runs with
whichever of DOConv, RefConv, CondConv (4 experts), SCConv and DWSConv are
registered; a variant that is missing or refuses a shape is reported, not
fatal.
"""
import argparse
import datetime
import json
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_conv_layer
from mmengine.registry import MODELS
from torch import nn
from torch.profiler import ProfilerActivity, profile

from mmconvplug.convs import is_foldable


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

#: Tiny shapes for ``--quick`` (a smoke run, not a measurement).
QUICK_SHAPES = (
    ConvShape('quick_8@12x10', 1, 8, 8, 12, 10),
    ConvShape('quick_16@6x5', 2, 16, 16, 6, 5),
)

SHAPE_SETS = {
    'mission': MISSION_SHAPES,
    'imagenet': IMAGENET_SHAPES,
    'all': MISSION_SHAPES + IMAGENET_SHAPES,
}

#: Registry name -> extra config, in report order.
VARIANTS = (
    ('DOConv', {}),
    ('RefConv', {}),
    ('CondConv', {'num_experts': 4}),
    ('SCConv', {}),
    ('DWSConv', {}),
)


#: Name of the optional public-style DO-Conv row (``--public-baseline``).
PUBLIC_DO_CONV = 'DOConv-public-style'


class PublicStyleDOConv(nn.Module):
    """DO-Conv composed the way the public reference code does it.

    Only for ``--public-baseline``: same maths as :class:`DOConv` for
    groups=1, but the kernel is composed each call with
    ``torch.einsum('ims,ois->oim', D, W)`` over a (C_out, C_in, D_mul) ``W``
    and autograd's default backward, as in the authors' released layer, so
    the benchmark can show what the chosen composition saves on this
    machine. Not registered, not exported.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int, stride: int, padding: int,
                 dilation: int) -> None:
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


def build_layer(shape: ConvShape, cfg: Optional[dict]) -> nn.Module:
    """A plain conv (``cfg=None``) or a variant via ``build_conv_layer``."""
    if cfg is not None and cfg['type'] == PUBLIC_DO_CONV:
        return PublicStyleDOConv(shape.in_channels, shape.out_channels,
                                 shape.kernel_size, shape.stride,
                                 shape.padding, shape.dilation)
    return build_conv_layer(
        cfg, shape.in_channels, shape.out_channels, shape.kernel_size,
        stride=shape.stride, padding=shape.padding, dilation=shape.dilation,
        groups=1, bias=False)


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


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
    """Peak bytes allocated during one train step, above what existed before.

    From the profiler's memory timeline (every tensor allocation and free,
    by category), exported as JSON: the maximum total minus the total at
    the first sample (parameters and the input).
    """
    clear_gradients(layer, x)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=True, with_stack=True) as prof:
        layer(x).backward(grad_out)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Deprecated in favour of a CUDA-only API; still the CPU timeline.
        warnings.simplefilter('ignore', FutureWarning)
        path = os.path.join(tmp, 'memory_timeline.json')
        prof.export_memory_timeline(path, device='cpu')
        with open(path) as f:
            _, sizes = json.load(f)
    totals = [sum(sample) for sample in sizes] or [0]
    return max(totals) - totals[0]


def median_times(calls: Dict[str, Callable[[], None]], repeats: int,
                 clock: Callable[[], float]) -> Dict[str, float]:
    """Interleaved timing: warm each call once, then ``repeats`` rounds."""
    for call in calls.values():
        call()
    samples: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = clock()
            call()
            samples[name].append(clock() - start)
    return {name: statistics.median(v) * 1e3 for name, v in samples.items()}


def available_variants() -> Tuple[List[Tuple[str, dict]], Dict[str, str]]:
    found, missing = [], {}
    for name, extra in VARIANTS:
        if MODELS.get(name) is None:
            missing[name] = 'not registered'
        else:
            found.append((name, extra))
    return found, missing


def benchmark_shape(shape: ConvShape,
                    variants: Sequence[Tuple[str, dict]],
                    repeats: int,
                    clock: Callable[[], float] = time.perf_counter
                    ) -> List[dict]:
    """Measure every variant and the plain conv on one shape."""
    # A layer inside a network: its input needs a gradient too.
    x = torch.randn(shape.batch, shape.in_channels, shape.height,
                    shape.width, requires_grad=True)
    plain = build_layer(shape, None)
    grad_out = torch.randn_like(plain(x).detach())
    layers, errors = {}, {}
    for name, extra in variants:
        try:
            layers[name] = build_layer(shape, dict(type=name, **extra))
        except (ValueError, TypeError, RuntimeError) as err:
            errors[name] = f'{type(err).__name__}: {err}'

    train_calls = {'plain': lambda: train_step(plain, x, grad_out)}
    for name, layer in layers.items():
        train_calls[name] = (
            lambda layer=layer: train_step(layer, x, grad_out))
    train_ms = median_times(train_calls, repeats, clock)

    plain.eval()
    eval_calls = {'plain': lambda: eval_forward(plain, x)}
    folded = {}
    for name, layer in layers.items():
        layer.eval()
        eval_calls[name] = lambda layer=layer: eval_forward(layer, x)
        if is_foldable(layer):
            folded[name] = layer.fold()
            eval_calls[name + ':folded'] = (
                lambda conv=folded[name]: eval_forward(conv, x))
    eval_ms = median_times(eval_calls, repeats, clock)

    plain.train()
    plain_peak = peak_train_bytes(plain, x, grad_out)
    rows = []
    for name, _ in variants:
        row = dict(shape=asdict(shape), variant=name)
        if name in errors:
            row['error'] = errors[name]
            rows.append(row)
            continue
        layer = layers[name].train()
        peak = peak_train_bytes(layer, x, grad_out)
        folded_ms = eval_ms.get(name + ':folded')
        row.update(
            params=trainable_parameters(layer),
            params_plain=trainable_parameters(plain),
            train_ms=train_ms[name],
            train_ms_plain=train_ms['plain'],
            train_ratio=train_ms[name] / train_ms['plain'],
            eval_unfolded_ms=eval_ms[name],
            eval_folded_ms=folded_ms,
            eval_plain_ms=eval_ms['plain'],
            eval_unfolded_ratio=eval_ms[name] / eval_ms['plain'],
            eval_folded_ratio=(None if folded_ms is None else folded_ms /
                               eval_ms['plain']),
            peak_train_mb=peak / 2**20,
            peak_train_mb_plain=plain_peak / 2**20,
            peak_train_ratio=peak / plain_peak if plain_peak else None,
        )
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """A fixed-width text table of the ratios."""
    header = (f'{"shape":30s} {"variant":19s} {"params":>9s} {"train":>6s} '
              f'{"eval":>6s} {"folded":>6s} {"peakMB":>8s} {"mem":>5s}')
    lines = [header, '-' * len(header)]

    def ratio(value: Optional[float]) -> str:
        return '   n/a' if value is None else f'{value:6.2f}'

    for row in rows:
        shape = row['shape']['name']
        if 'error' in row:
            lines.append(f'{shape:30s} {row["variant"]:19s} {row["error"]}')
            continue
        lines.append(
            f'{shape:30s} {row["variant"]:19s} {row["params"]:9d} '
            f'{ratio(row["train_ratio"])} {ratio(row["eval_unfolded_ratio"])}'
            f' {ratio(row["eval_folded_ratio"])} '
            f'{row["peak_train_mb"]:8.2f} {ratio(row["peak_train_ratio"])}')
    lines.append('ratios to nn.Conv2d of the same shape (medians of '
                 'interleaved repeats); peakMB: one train step.')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='tools/benchmark.py layers',
        description='Conv variants vs nn.Conv2d of the same shape.')
    parser.add_argument('--shapes', choices=sorted(SHAPE_SETS),
                        default='mission',
                        help='shape set (default: mission)')
    parser.add_argument('--json', metavar='OUT',
                        help='also write the results as JSON to OUT')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed repeats per measurement (default 5)')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads (default 2)')
    parser.add_argument('--variants', nargs='+', metavar='NAME',
                        help='measure only these registry names '
                        '(default: every registered variant)')
    parser.add_argument('--public-baseline', action='store_true',
                        help='also time DO-Conv composed as in the public '
                        'reference code (einsum, autograd backward)')
    parser.add_argument('--cpu-time', action='store_true',
                        help='time with the process CPU clock instead of '
                        'wall time: robust on a shared machine with '
                        '--threads 1 (with more threads it adds their '
                        'busy-waiting)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny shapes, 2 repeats: a smoke run')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}.')
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = QUICK_SHAPES if args.quick else SHAPE_SETS[args.shapes]
    repeats = 2 if args.quick else args.repeats
    clock = time.process_time if args.cpu_time else time.perf_counter
    variants, missing = available_variants()
    if args.variants:
        known = [name for name, _ in VARIANTS]
        unknown = sorted(set(args.variants) - set(known))
        if unknown:
            raise ValueError(
                f'--variants: unknown {unknown}; choose from {known}.')
        variants = [v for v in variants if v[0] in args.variants]
    if args.public_baseline:
        variants.append((PUBLIC_DO_CONV, {}))
    torch.manual_seed(0)
    rows = []
    for shape in shapes:
        rows.extend(benchmark_shape(shape, variants, repeats, clock))
        print(f'measured {shape.name}', flush=True)
    print(format_table(rows))
    if missing:
        print('not measured: ' + ', '.join(
            f'{name} ({why})' for name, why in missing.items()))
    if args.json:
        report = dict(
            meta=dict(
                date=datetime.datetime.now(
                    datetime.timezone.utc).isoformat(),
                torch=torch.__version__,
                threads=args.threads,
                repeats=repeats,
                shapes='quick' if args.quick else args.shapes,
                timing=f'median of interleaved {clock.__name__} repeats, '
                'one warm-up call each',
                memory='torch.profiler memory timeline of one train step '
                '(export_memory_timeline, device cpu): peak live tensor '
                'bytes minus those alive at its start',
                missing_variants=missing),
            results=rows)
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'wrote {args.json}')
    return 0
