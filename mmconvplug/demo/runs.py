"""Train, test, fold and time the demo variants with the real Runner."""
import copy
import functools
import logging
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from mmengine.runner import Runner

from mmconvplug.analysis import (
    count_parameters,
    interleaved_medians,
    output_difference,
)
from mmconvplug.configs_path import configs_root
from mmconvplug.datagen import TINY_DATASETS, ensure_tiny_dataset
from mmconvplug.fold import fold_model

from .report import format_results, plot_results, write_results
from .tasks import TASKS, demo_config, demo_variants, resolve_config


@dataclass
class DemoOptions:
    """What ``tools/demo.py`` passes (its command-line options).

    Args:
        task (str): A key of :data:`~mmconvplug.demo.tasks.TASKS`.
            Defaults to ``'det'``.
        iters (int, optional): Training iterations per variant. Defaults to
            the task's.
        out (str): Output folder. Defaults to ``'outputs/demo'``.
        variants (list[str]): Names from :func:`demo_variants`; the first
            is the timing reference. Defaults to baseline, doconv, refconv.
        data_root (str): Where the tiny datasets live. Defaults to
            ``'data/tiny'``.
        num_train (int, optional): Training images. Defaults to the task's.
        num_val (int, optional): Validation images. Defaults to the task's.
        seed (int): Seed for data and training. Defaults to 0.
        timing_rounds (int): Interleaved inference timing rounds. Defaults
            to 5.
    """

    task: str = 'det'
    iters: Optional[int] = None
    out: str = 'outputs/demo'
    variants: List[str] = field(
        default_factory=lambda: ['baseline', 'doconv', 'refconv'])
    data_root: str = 'data/tiny'
    num_train: Optional[int] = None
    num_val: Optional[int] = None
    seed: int = 0
    timing_rounds: int = 5


def say(msg: str) -> None:
    """A demo stage header, visible between the Runner's log lines."""
    print(f'\n==> {msg}', flush=True)


def prepare_dataset(options: DemoOptions) -> str:
    """The task's tiny dataset (generated when missing); its data_root."""
    task = TASKS[options.task]
    num_train = options.num_train or task.num_train
    num_val = options.num_val or task.num_val
    start = time.perf_counter()
    data_root, generated = ensure_tiny_dataset(
        task.dataset, options.data_root, num_train, num_val,
        seed=options.seed)
    size = 'x'.join(map(str, TINY_DATASETS[task.dataset].size))
    if generated:
        say(f'generated the tiny dataset in {data_root} ({num_train} train '
            f'/ {num_val} val images, {size}) in '
            f'{time.perf_counter() - start:.1f}s')
    else:
        say(f'tiny dataset ready: {data_root} ({num_train} train / '
            f'{num_val} val images)')
    return data_root


def first_test_batch(runner: Runner) -> dict:
    """One test batch of batch size 1, for timing and the fold check."""
    loader = runner.test_dataloader
    return loader.collate_fn([loader.dataset[0]])


def train_variant(config: str, variant: str, data_root: str, iters: int,
                  options: DemoOptions) -> dict:
    """Train one variant, test it unfolded and folded; return its record."""
    task = TASKS[options.task]
    conv_cfg = demo_variants()[variant]
    cfg = demo_config(config, variant, conv_cfg, data_root, iters,
                      options.out, options.seed)
    say(f'[{variant}] training {iters} iterations (conv_cfg={conv_cfg}); '
        f'logs in {cfg.work_dir}')
    runner = Runner.from_cfg(cfg)
    # Back to INFO after the quiet build: training progress is shown.
    runner.logger.setLevel(logging.INFO)
    for handler in runner.logger.handlers:
        handler.setLevel(logging.INFO)
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
    difference = output_difference(trained, folded, copy.deepcopy(batch))
    return dict(
        variant=variant,
        conv_cfg=conv_cfg,
        train_seconds=round(train_s, 1),
        losses=losses,
        trainable_params=count_parameters(trained, trainable_only=True),
        deployed_params=count_parameters(folded),
        metric=float(metrics[task.metric]) * task.metric_scale,
        metric_folded=float(folded_metrics[task.metric]) * task.metric_scale,
        fold_max_abs_diff=difference.max_abs_error,
        models=dict(trained=trained, folded=folded),
        batch=batch)


def time_test_steps(models: Dict[str, torch.nn.Module], batch: dict,
                    rounds: int, calls: int = 3) -> Dict[str, float]:
    """Median milliseconds per ``test_step`` (pre-processing, network and
    post-processing), in interleaved rounds of ``calls`` steps each."""
    pending: List[dict] = []

    def fresh_batches() -> None:  # untimed: test_step consumes its batch
        pending[:] = [copy.deepcopy(batch) for _ in range(calls)]

    def run(model: torch.nn.Module) -> None:
        for data in pending:
            model.test_step(data)

    for model in models.values():
        model.eval()
    with torch.no_grad():
        seconds = interleaved_medians(
            {name: functools.partial(run, model)
             for name, model in models.items()},
            rounds, before_each=fresh_batches)
    return {name: s * 1e3 / calls for name, s in seconds.items()}


def run_demo(options: DemoOptions) -> dict:
    """Run the whole demo; print the table and write the outputs.

    Returns:
        dict: The summary written to ``<out>/results.json``.

    Raises:
        ValueError: the task's config is missing or a variant is unknown.
    """
    task = TASKS[options.task]
    unknown = sorted(set(options.variants) - set(demo_variants()))
    if unknown:
        raise ValueError(f'unknown variants {unknown}; choose from '
                         f'{list(demo_variants())}.')
    config = resolve_config(task)
    iters = options.iters or task.iters
    os.makedirs(options.out, exist_ok=True)
    torch.manual_seed(options.seed)
    total_start = time.perf_counter()
    data_root = prepare_dataset(options)
    records = [train_variant(config, v, data_root, iters, options)
               for v in options.variants]

    say(f'timing inference ({options.timing_rounds} interleaved rounds, '
        'batch 1)')
    models = {}
    for r in records:
        models[f'{r["variant"]}/unfolded'] = r['models']['trained']
        models[f'{r["variant"]}/folded'] = r['models']['folded']
    ms = time_test_steps(models, records[0]['batch'], options.timing_rounds)
    reference = ms[f'{records[0]["variant"]}/folded']
    for r in records:
        r['ms_unfolded'] = ms[f'{r["variant"]}/unfolded']
        r['ms_folded'] = ms[f'{r["variant"]}/folded']
        r['folded_vs_baseline'] = r['ms_folded'] / reference

    figure = osp.join(options.out, 'demo.png')
    plot_results(records, task.metric_name, figure)
    total_s = time.perf_counter() - total_start
    # 'configs/...': the same name from a checkout or an installed wheel.
    config_name = osp.join('configs', osp.relpath(config, configs_root()))
    summary = dict(
        task=options.task, config=config_name, iters=iters,
        data_root=data_root, metric=task.metric, chance=task.chance,
        total_seconds=round(total_s, 1), figure=figure,
        variants=[{k: v for k, v in r.items() if k not in ('models', 'batch')}
                  for r in records])
    results = write_results(summary, options.out)
    say(f'results ({options.task}, {iters} iterations per variant, '
        f'{total_s / 60:.1f} min in all)')
    print(format_results(records, task.metric_name))
    print(f'\n{task.metric_name}: chance level: {task.chance}. '
          f'Timing reference: {records[0]["variant"]} (folded).')
    print(f'figure: {figure}\nnumbers: {results}')
    return summary
