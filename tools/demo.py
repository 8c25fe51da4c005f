"""The mmconvplug demo: train conv variants of a small model, fold, test, time.

    python tools/demo.py [--task det|seg|kpt] [--iters N] [--out DIR]
                         [--variants baseline doconv refconv]

For ``--task det`` (the default, what ``make demo`` runs) it

1. generates the tiny VOC set (``data/tiny/VOCdevkit``; reused when present),
2. trains a small SSD (stock mmdet SSD neck and head, ResNet-18 at 128 px,
   ``configs/demo/ssd_r18_tiny_voc.py``) three times with the real mmengine
   Runner: plain convs, ``conv_cfg=dict(type='DOConv')`` and
   ``conv_cfg=dict(type='RefConv')``,
3. tests each model with the stock VOC metric, folds it into plain convs
   (``mmconvplug.fold_model``), tests the folded model again,
4. times inference of the folded models against the plain baseline,
5. prints a table and writes ``<out>/demo.png`` (loss curves, metric and
   latency) and ``<out>/results.json``.

``--task seg`` does the same for DeepLabv3+ (ResNet-18) on tiny Cityscapes
(mIoU); ``--task kpt`` for Keypoint R-CNN on tiny COCO person keypoints when
``configs/keypoint_rcnn/`` provides its tiny config.

About 5 minutes on a quiet 2-core CPU for ``--task det``. On a machine
shared with other busy processes run it with ``OMP_NUM_THREADS=1``: torch's
worker threads otherwise spin against the other jobs (we measured one SSD
training step 10x slower with 2 threads than with 1 on an overloaded host).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import glob
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from typing import Dict, List, Optional

# mmengine imports pkg_resources; its deprecation notice would open the demo.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import torch  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # run from anywhere: the package is editable

import mmconvplug  # noqa: E402,F401  (registers the variants)
from mmconvplug.datagen import (make_tiny_cityscapes,  # noqa: E402
                                make_tiny_coco_keypoints, make_tiny_voc)
from mmconvplug.datagen.config_paths import set_data_root  # noqa: E402

#: conv_cfg per variant name (``None``: the stock ``nn.Conv2d``).
VARIANTS: Dict[str, Optional[dict]] = {
    'baseline': None,
    'doconv': dict(type='DOConv'),
    'refconv': dict(type='RefConv'),
    'condconv': dict(type='CondConv'),
    'scconv': dict(type='SCConv'),
    'dwsconv': dict(type='DWSConv'),
}

#: Everything that differs between the demo tasks.
TASKS = {
    'det': dict(
        config='configs/demo/ssd_r18_tiny_voc.py',
        make=make_tiny_voc, data_sub='', data_root_sub='VOCdevkit',
        size=(128, 128), num_train=192, num_val=48, iters=120,
        metric='pascal_voc/mAP', metric_name='mAP (VOC, %)', metric_scale=100,
        chance='random boxes score ~0 mAP'),
    'seg': dict(
        config='configs/demo/deeplabv3plus_r18_tiny_cityscapes.py',
        make=make_tiny_cityscapes, data_sub='cityscapes',
        data_root_sub='cityscapes', size=(128, 64), num_train=64, num_val=16,
        iters=80, metric='mIoU', metric_name='mIoU (%)', metric_scale=1,
        chance='uniform guessing over 19 classes ~ 2-5 mIoU'),
    'kpt': dict(
        config='configs/keypoint_rcnn/*tiny*.py',
        make=make_tiny_coco_keypoints, data_sub='coco_keypoints',
        data_root_sub='coco_keypoints', size=(128, 128), num_train=96,
        num_val=24, iters=200, metric='coco/keypoints_mAP',
        metric_name='keypoint AP', metric_scale=100,
        chance='random keypoints score ~0 AP'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train plain / DO-Conv / RefConv variants of a small '
        'model on a tiny dataset, fold them, test and time them.')
    parser.add_argument('--task', choices=sorted(TASKS), default='det',
                        help='det: SSD on tiny VOC (default); seg: '
                        'DeepLabv3+ on tiny Cityscapes; kpt: Keypoint R-CNN '
                        'on tiny COCO keypoints')
    parser.add_argument('--iters', type=int,
                        help='training iterations per variant (default: '
                        'det 120, seg 80, kpt 200)')
    parser.add_argument('--out', default='outputs/demo',
                        help='output folder (default: outputs/demo)')
    parser.add_argument('--variants', nargs='+',
                        default=['baseline', 'doconv', 'refconv'],
                        choices=list(VARIANTS),
                        help='variants to train (default: baseline doconv '
                        'refconv); the first one is the timing reference')
    parser.add_argument('--data-root', default='data/tiny',
                        help='where the tiny datasets live (default: '
                        'data/tiny); generated when missing')
    parser.add_argument('--num-train', type=int,
                        help='training images to generate (default per task)')
    parser.add_argument('--num-val', type=int,
                        help='validation images to generate (default per '
                        'task)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed for data and training (default: 0)')
    parser.add_argument('--timing-rounds', type=int, default=5,
                        help='interleaved rounds of inference timing '
                        '(default: 5)')
    args = parser.parse_args(argv)
    for name in ('iters', 'num_train', 'num_val'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got '
                         f'{value}')
    if args.timing_rounds < 1:
        parser.error(f'--timing-rounds must be >= 1, got {args.timing_rounds}')
    return args


def say(msg: str) -> None:
    """A demo stage header, visible between the Runner's log lines."""
    print(f'\n==> {msg}', flush=True)


# ---------------------------------------------------------------- data ---
def ensure_dataset(spec: dict, args: argparse.Namespace) -> str:
    """Generate the task's tiny dataset unless the same one is on disk;
    return the ``data_root`` for the config."""
    num_train = args.num_train or spec['num_train']
    num_val = args.num_val or spec['num_val']
    want = dict(generator=spec['make'].__name__, num_train=num_train,
                num_val=num_val, size=list(spec['size']), seed=args.seed,
                version=mmconvplug.__version__)
    gen_root = osp.join(args.data_root, spec['data_sub'])
    data_root = osp.join(args.data_root, spec['data_root_sub'])
    stamp = osp.join(data_root, '.mmconvplug-tiny.json')
    if osp.isfile(stamp) and json.load(open(stamp)) == want:
        say(f'tiny dataset ready: {data_root} ({num_train} train / {num_val} '
            'val images)')
        return data_root
    say(f'generating the tiny dataset in {data_root} ({num_train} train / '
        f'{num_val} val images, {spec["size"][0]}x{spec["size"][1]})')
    start = time.perf_counter()
    spec['make'](gen_root, num_train=num_train, num_val=num_val,
                 size=spec['size'], seed=args.seed)
    with open(stamp, 'w') as f:
        json.dump(want, f)
    print(f'    done in {time.perf_counter() - start:.1f}s')
    return data_root


# -------------------------------------------------------------- config ---
def resolve_config(spec: dict) -> str:
    """The task's config file; a clear error when it is not installed."""
    matches = sorted(glob.glob(osp.join(REPO, spec['config'])))
    if not matches:
        raise ValueError(
            f'--task needs the config {spec["config"]}, which this checkout '
            'does not have (the keypoint task needs mmconvplug.keypoint and '
            'its configs/keypoint_rcnn/ tiny config); choose --task det or '
            '--task seg.')
    return matches[0]


def variant_config(config: str, variant: str, data_root: str, iters: int,
                   args: argparse.Namespace):
    """The task config, pointed at the tiny data, with the variant's convs,
    ``iters`` iterations and no validation during training (the demo tests
    after training, once unfolded and once folded)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    set_data_root(cfg, data_root)
    conv_cfg = VARIANTS[variant]
    if conv_cfg is not None:
        cfg.model.backbone.conv_cfg = dict(conv_cfg)
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
    cfg.experiment_name = f'{variant}_{stamp}'
    # Visualizers are process-wide singletons looked up by name: one per
    # variant keeps each variant's scalars in its own work_dir.
    cfg.visualizer.name = cfg.experiment_name
    cfg.work_dir = osp.join(args.out, variant)
    cfg.randomness = dict(seed=args.seed)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    warmup = max(1, min(30, iters // 5))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=warmup),
        dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False,
             begin=warmup, end=iters)
    ]
    cfg.default_hooks.logger.interval = max(1, min(20, iters // 10))
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters,
        save_last=True, max_keep_ckpts=1)
    cfg.log_processor = dict(type='LogProcessor', window_size=10,
                             by_epoch=False)
    # The Runner logs its environment and the whole config at INFO when it
    # is built; keep that in the log file only, show training progress.
    cfg.log_level = 'WARNING'
    return cfg


# -------------------------------------------------------------- models ---
def count_params(model: torch.nn.Module, trainable_only: bool) -> int:
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad or not trainable_only)


def first_test_batch(runner) -> dict:
    """One test batch of batch size 1, for timing and the fold check."""
    loader = runner.test_dataloader
    sample = loader.dataset[0]
    return loader.collate_fn([sample])


def max_output_diff(model_a, model_b, batch: dict) -> float:
    """Largest absolute difference of the raw network outputs (mode
    ``tensor``) of two models on one batch: ~1e-5 when folding is exact."""
    def outputs(model):
        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(copy.deepcopy(batch), False)
            out = model(**data, mode='tensor')
        flat = []

        def walk(x):
            if isinstance(x, torch.Tensor):
                flat.append(x.float().flatten())
            elif isinstance(x, (list, tuple)):
                for y in x:
                    walk(y)
            elif isinstance(x, dict):
                for y in x.values():
                    walk(y)
        walk(out)
        return torch.cat(flat)

    return float((outputs(model_a) - outputs(model_b)).abs().max())


def time_models(models: Dict[str, torch.nn.Module], batch: dict,
                rounds: int, calls: int = 3) -> Dict[str, float]:
    """Median milliseconds per ``test_step`` (pre-processing, network and
    post-processing), measured in interleaved rounds so that a busy machine
    slows every model alike."""
    samples: Dict[str, List[float]] = {k: [] for k in models}
    with torch.no_grad():
        for model in models.values():
            model.eval()
            model.test_step(copy.deepcopy(batch))  # warm-up
        for _ in range(rounds):
            for name, model in models.items():
                data = [copy.deepcopy(batch) for _ in range(calls)]
                start = time.perf_counter()
                for d in data:
                    model.test_step(d)
                samples[name].append(
                    (time.perf_counter() - start) * 1000 / calls)
    return {k: statistics.median(v) for k, v in samples.items()}


def show_progress_logs(runner) -> None:
    """Back to INFO after the quiet build: training progress is shown."""
    runner.logger.setLevel(logging.INFO)
    for handler in runner.logger.handlers:
        handler.setLevel(logging.INFO)


def train_variant(config: str, variant: str, data_root: str, iters: int,
                  spec: dict, args: argparse.Namespace) -> dict:
    """Train one variant, test it unfolded and folded; return its record."""
    from mmengine.runner import Runner

    from mmconvplug import fold_model
    cfg = variant_config(config, variant, data_root, iters, args)
    say(f'[{variant}] training {iters} iterations '
        f'(conv_cfg={VARIANTS[variant]}); logs in {cfg.work_dir}')
    runner = Runner.from_cfg(cfg)
    show_progress_logs(runner)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    losses = runner.message_hub.get_scalar('train/loss').data[0].tolist()
    trained = runner.model
    say(f'[{variant}] testing the trained (unfolded) model')
    metrics = runner.test()
    folded = fold_model(trained, inplace=False)
    say(f'[{variant}] testing the folded model')
    runner.model = folded
    folded_metrics = runner.test()
    runner.model = trained
    batch = first_test_batch(runner)
    scale = spec['metric_scale']
    return dict(
        variant=variant,
        conv_cfg=VARIANTS[variant],
        train_seconds=round(train_s, 1),
        losses=losses,
        trainable_params=count_params(trained, trainable_only=True),
        deployed_params=count_params(folded, trainable_only=False),
        metric=float(metrics[spec['metric']]) * scale,
        metric_folded=float(folded_metrics[spec['metric']]) * scale,
        fold_max_abs_diff=max_output_diff(trained, folded, batch),
        models=dict(trained=trained, folded=folded),
        batch=batch)


# -------------------------------------------------------------- report ---
def format_table(records: List[dict], spec: dict) -> str:
    head = ['variant', 'trainable params', 'deployed params',
            f'{spec["metric_name"]} unfolded', 'folded', 'max |out diff|',
            'ms unfolded', 'ms folded', 'folded / baseline']
    rows = [head]
    for r in records:
        rows.append([
            r['variant'], f'{r["trainable_params"]:,}',
            f'{r["deployed_params"]:,}', f'{r["metric"]:.1f}',
            f'{r["metric_folded"]:.1f}', f'{r["fold_max_abs_diff"]:.1e}',
            f'{r["ms_unfolded"]:.1f}', f'{r["ms_folded"]:.1f}',
            f'{r["folded_vs_baseline"]:.2f}x'
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [' | '.join(c.rjust(w) if i else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, '-+-'.join('-' * w for w in widths))
    return '\n'.join(lines)


def plot(records: List[dict], spec: dict, path: str) -> None:
    """Loss curves, metric unfolded vs folded, latency (matplotlib Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for r in records:
        loss = np.asarray(r['losses'])
        k = max(1, len(loss) // 30)
        smooth = np.convolve(loss, np.ones(k) / k, mode='valid')
        axes[0].plot(np.arange(len(smooth)) + k, smooth, label=r['variant'])
    axes[0].set(title='training loss (moving average)', xlabel='iteration',
                ylabel='loss')
    axes[0].legend()
    x = np.arange(len(records))
    names = [r['variant'] for r in records]
    axes[1].bar(x - 0.2, [r['metric'] for r in records], 0.4,
                label='trained (unfolded)')
    axes[1].bar(x + 0.2, [r['metric_folded'] for r in records], 0.4,
                label='folded')
    axes[1].set(title=f'{spec["metric_name"]} on the tiny val set',
                xticks=x, xticklabels=names)
    axes[1].legend(loc='lower center', fontsize=8)
    axes[2].bar(x - 0.2, [r['ms_unfolded'] for r in records], 0.4,
                label='trained (unfolded)')
    axes[2].bar(x + 0.2, [r['ms_folded'] for r in records], 0.4,
                label='folded')
    axes[2].set(title='inference, batch 1 (ms, median)', xticks=x,
                xticklabels=names)
    axes[2].legend(loc='lower center', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    spec = TASKS[args.task]
    iters = args.iters or spec['iters']
    try:
        config = resolve_config(spec)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    total_start = time.perf_counter()
    data_root = ensure_dataset(spec, args)
    records = [train_variant(config, v, data_root, iters, spec, args)
               for v in args.variants]

    say(f'timing inference ({args.timing_rounds} interleaved rounds, batch 1)')
    batch = records[0]['batch']
    models = {}
    for r in records:
        models[f'{r["variant"]}/unfolded'] = r['models']['trained']
        models[f'{r["variant"]}/folded'] = r['models']['folded']
    ms = time_models(models, batch, args.timing_rounds)
    reference = ms[f'{records[0]["variant"]}/folded']
    for r in records:
        r['ms_unfolded'] = ms[f'{r["variant"]}/unfolded']
        r['ms_folded'] = ms[f'{r["variant"]}/folded']
        r['folded_vs_baseline'] = r['ms_folded'] / reference

    table = format_table(records, spec)
    figure = osp.join(args.out, 'demo.png')
    plot(records, spec, figure)
    total_s = time.perf_counter() - total_start
    summary = dict(
        task=args.task, config=osp.relpath(config, REPO), iters=iters,
        data_root=data_root, metric=spec['metric'], chance=spec['chance'],
        total_seconds=round(total_s, 1), figure=figure,
        variants=[{k: v for k, v in r.items() if k not in ('models', 'batch')}
                  for r in records])
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    say(f'results ({args.task}, {iters} iterations per variant, '
        f'{total_s / 60:.1f} min in all)')
    print(table)
    print(f'\n{spec["metric_name"]}: chance level: {spec["chance"]}. '
          f'Timing reference: {records[0]["variant"]} (folded).')
    print(f'figure: {figure}\nnumbers: {osp.join(args.out, "results.json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
