"""``mmconvplug benchmark MODE`` (and ``tools/benchmark.py MODE``).

Ratios measured in one run: ``layers`` (each conv variant vs ``nn.Conv2d``
of the same shape), ``models`` (params, FLOPs and inference time, trained
vs folded vs stock) and ``train`` (whole-model train step, variants built
from the plain model's weights). The measurements are
:mod:`mmconvplug.benchmarks`; this module parses the options, prints the
tables and writes the JSON.
"""
import argparse
import datetime
import json
import time
from types import SimpleNamespace
from typing import Callable, Tuple

import torch

from mmconvplug.analysis.memory import rss_peak_supported
from mmconvplug.benchmarks import layers, models, train
from mmconvplug.benchmarks.baselines import (
    PUBLIC_DO_CONV,
    TIMM_COND_CONV,
    timm_available,
)
from mmconvplug.convs.base import conv_variants

DESCRIPTION = """benchmarks, reported as ratios measured in one run

  layers  each conv variant (and timm's CondConv2d when installed) vs
          nn.Conv2d of the same shape: train step, eval unfolded / folded,
          parameters, peak memory
  models  SSD300, Mask R-CNN R50-FPN, DeepLabv3+ R50: params and FLOPs
          trained vs folded, inference time folded vs the stock model
  train   whole-model train step of each variant, built from the plain
          model's weights, vs the plain model: time and peak memory

`MODE --help` lists each mode's options."""


def add_measurement_options(parser: argparse.ArgumentParser,
                            repeats: int = 5) -> None:
    """Declare the options ``layers`` and ``train`` share."""
    parser.add_argument('--repeats', type=int, default=repeats,
                        help=f'timed repeats per measurement (default '
                        f'{repeats})')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads (default 2)')
    parser.add_argument('--cpu-time', action='store_true',
                        help='time with the process CPU clock instead of '
                        'wall time: robust on a shared machine with '
                        '--threads 1 (with more threads it adds their '
                        'busy-waiting)')
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--json', metavar='OUT',
                        help='also write the results as JSON to OUT')
    parser.add_argument('--markdown', action='store_true',
                        help='print the table in Markdown (for the docs)')


def measurement_setup(parser: argparse.ArgumentParser,
                      args: argparse.Namespace
                      ) -> Tuple[Callable[[], float], str]:
    """Check the shared options, set torch's threads; ``(clock, device)``.

    A bad value exits through ``parser.error`` with the option's name.
    """
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}.')
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}.')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {device}: CUDA is not available here.')
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    return clock, device


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _write_json(path: str, report: dict) -> None:
    with open(path, 'w') as file:
        json.dump(report, file, indent=2)
    print(f'wrote {path}')


# ---------------------------------------------------------------- layers
def _add_layers_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--shapes', choices=sorted(layers.SHAPE_SETS),
                        default='mission',
                        help='shape set (default: mission)')
    parser.add_argument('--variants', nargs='+', metavar='NAME',
                        help='measure only these (registered variants, '
                        f'{TIMM_COND_CONV}, {PUBLIC_DO_CONV}, '
                        'CondConv-<path>, DOConv-eager / RefConv-eager: the '
                        'fused CPU kernels off; default: every registered '
                        'variant, and timm when installed)')
    parser.add_argument('--public-baseline', action='store_true',
                        help='also time DO-Conv composed as in the public '
                        'reference code (einsum, autograd backward)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny shapes, 2 repeats: a smoke run')
    add_measurement_options(parser)


def _run_layers(args: argparse.Namespace,
                parser: argparse.ArgumentParser) -> int:
    clock, device = measurement_setup(parser, args)
    shapes = (layers.QUICK_SHAPES if args.quick else
              layers.SHAPE_SETS[args.shapes])
    repeats = 2 if args.quick else args.repeats
    variants = layers.selected_variants(args.variants, args.public_baseline)
    torch.manual_seed(0)
    rows = []
    for shape in shapes:
        rows.extend(layers.benchmark_shape(shape, variants, repeats, clock,
                                           device))
        print(f'measured {shape.name}', flush=True)
    print(layers.format_results(rows, markdown=args.markdown))
    print(f'ratios to nn.Conv2d of the same shape: medians of {repeats} '
          'interleaved repeats (interquartile range of the per-repeat '
          'ratios); compose: the kernel composition forward + backward '
          'alone, ms and its ratio to the memory floor (two fresh copies and '
          'one in-place add of a kernel-sized tensor); the public DO-Conv\'s '
          'einsum leaves its layout copy to the conv; peak MB: one train '
          'step.')
    if not timm_available():
        print(f'not measured: {TIMM_COND_CONV} (pip install timm)')
    if args.json:
        meta = dict(
            date=_utc_now(), torch=torch.__version__, device=device,
            threads=args.threads, repeats=repeats,
            shapes='quick' if args.quick else args.shapes,
            timing=f'median of interleaved {clock.__name__} repeats, '
            'one warm-up call each' + (' (CUDA events)'
                                       if device != 'cpu' else ''),
            memory=('torch.cuda.max_memory_allocated' if device != 'cpu'
                    else 'torch.profiler memory timeline of one train step '
                    '(export_memory_timeline, device cpu)') +
            ': peak live tensor bytes minus those alive at its start',
            variants=variants)
        _write_json(args.json, dict(meta=meta, results=rows))
    return 0


# ---------------------------------------------------------------- models
def _add_models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--variant', default='DOConv',
                        help='conv variant the trained model uses')
    parser.add_argument('--models', nargs='+',
                        choices=sorted(models.MODEL_SPECS),
                        default=list(models.MODEL_SPECS))
    parser.add_argument('--quick', action='store_true',
                        help='smaller inputs, fewer timing rounds')
    parser.add_argument('--iters', type=int, default=None,
                        help='timing rounds per model (default 5, quick 2)')
    parser.add_argument('--json', help='write the figures to this file')


def _run_models(args: argparse.Namespace,
                parser: argparse.ArgumentParser) -> int:
    rounds = args.iters or (2 if args.quick else 5)
    if rounds < 1:
        parser.error(f'--iters must be >= 1, got {rounds}.')
    rows = []
    for name in args.models:
        rows.append(models.benchmark_model(name, args.variant, args.quick,
                                           rounds))
        print(f'{name}: done', flush=True)
    print(models.format_results(rows))
    print('ratio: folded vs stock plain model inference time (target '
          '<= 1.02)')
    if args.json:
        _write_json(args.json, dict(threads=torch.get_num_threads(),
                                    rows=rows))
    return 0


# ----------------------------------------------------------------- train
def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--models', nargs='+',
                        choices=list(train.MODEL_SPECS),
                        default=list(train.MODEL_SPECS))
    parser.add_argument('--variants', nargs='+', metavar='NAME',
                        help='registered conv variants (default per model: '
                        'DOConv RefConv; mobilenet_ssd: CondConv)')
    parser.add_argument('--quick', action='store_true',
                        help='batch 1-2, small inputs: a smoke run')
    parser.add_argument('--batch', type=_batch_arg, metavar='N|config',
                        help='images per step for every model, or "config": '
                        'each config\'s own train_dataloader.batch_size '
                        '(default: per model)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size for every model (default: per '
                        'model; SSD300 anchors want 300 300)')
    parser.add_argument('--compile', nargs='?', const='inductor',
                        metavar='BACKEND',
                        help='also run every model under torch.compile '
                        '(the backend, default inductor; aot_eager for a '
                        'quick check), as mmengine\'s compile=dict('
                        'backend=...) does for train_step: the forward and '
                        'loss compiled, backward and optimizer eager')
    add_measurement_options(parser)


def _batch_arg(text: str):
    """``--batch``: a positive int, or ``config``."""
    if text == train.CONFIG_BATCH:
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'must be a positive int or {train.CONFIG_BATCH!r} (each '
            f'config\'s own batch), got {text!r}')
    return value


def _run_train(args: argparse.Namespace,
               parser: argparse.ArgumentParser) -> int:
    clock, device = measurement_setup(parser, args)
    if args.size is not None and min(args.size) < 32:
        parser.error(f'--size must be at least 32 32, got {args.size}.')
    if args.variants:
        unknown = sorted(set(args.variants) - set(conv_variants()))
        if unknown:
            parser.error(f'--variants: {unknown} are not registered conv '
                         f'variants; choose from {sorted(conv_variants())}.')
    rows = []
    for name in args.models:
        variants = args.variants or train.MODEL_SPECS[name].variants
        rows.extend(train.benchmark_model(
            name, variants, args.quick, args.repeats, clock, device,
            args.batch, args.size,
            compile_cfg=dict(backend=args.compile) if args.compile else None))
        print(f'measured {name}', flush=True)
    print(train.format_results(rows, markdown=args.markdown))
    print(f'median (interquartile range) of {args.repeats} interleaved '
          f'train steps ({clock.__name__}, {args.threads} thread(s), '
          f'{device}); variants built from the plain weights (from_conv)'
          + (f'; compiled with backend={args.compile!r}'
             if args.compile else '') + '. extra ms: the variant\'s median '
          'forward + loss, backward and optimizer-step times minus the plain '
          'model\'s (perf_counter); compose: every kernel composition of the '
          'model, forward + backward, and its share of the plain step.')
    if args.json:
        meta = dict(
            date=_utc_now(), torch=torch.__version__, device=device,
            threads=args.threads, repeats=args.repeats, quick=args.quick,
            clock=clock.__name__, compile=args.compile,
            optimizer='SGD(lr=0, momentum=0.9, weight_decay=1e-4)',
            memory='CUDA max_memory_allocated' if device != 'cpu' else
            ('resident-set peak (VmHWM after clear_refs and malloc_trim)'
             if rss_peak_supported() else
             'torch.profiler memory timeline')
            + ' of one step, above what was alive before it')
        _write_json(args.json, dict(meta=meta, results=rows))
    return 0


#: The modes, as :func:`mmconvplug.cli.attach` takes them.
MODES = {
    'layers': SimpleNamespace(
        DESCRIPTION='conv variants vs nn.Conv2d of the same shape',
        add_arguments=_add_layers_arguments, run=_run_layers),
    'models': SimpleNamespace(
        DESCRIPTION='params, FLOPs and inference time: trained vs folded',
        add_arguments=_add_models_arguments, run=_run_models),
    'train': SimpleNamespace(
        DESCRIPTION="whole-model train step: variants built from the plain "
        "model's weights vs the plain model",
        add_arguments=_add_train_arguments, run=_run_train),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the modes, each with its own options."""
    from . import attach
    modes = parser.add_subparsers(dest='mode', metavar='MODE')
    modes.required = True
    for name, mode in MODES.items():
        attach(modes.add_parser(name, help=mode.DESCRIPTION,
                                description=mode.DESCRIPTION), mode)
