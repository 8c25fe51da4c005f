"""``mmconvplug train`` (and ``tools/train.py``): train with the variants.

The command line of mmdet's and mmseg's ``tools/train.py``; the config's
``default_scope`` (``mmdet`` or ``mmseg``) decides which library's
registries build the model, datasets and metrics. Many GPUs: ``torchrun
--nproc_per_node=8 tools/train.py CFG --launcher pytorch``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from mmconvplug.apis import add_checkpoint_fit_hook, check_config

#: Scopes whose libraries must be imported so their registries are filled.
_SCOPE_MODULES = {'mmdet': 'mmdet', 'mmseg': 'mmseg'}

DESCRIPTION = """train a detector or segmentor with the variants available

The command line of mmdet's and mmseg's tools/train.py. The config's
default_scope (mmdet or mmseg) picks the library; the plugin is imported,
so a config without custom_imports still finds DOConv, FoldHook and the
rest."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``train``'s options (mmdet's ``tools/train.py``)."""
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT if given, else from the latest checkpoint '
        'in the work directory')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs (e.g. '
        'train_cfg.max_iters=100 "model.backbone.conv_cfg.type=DOConv")')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch >= 2.0 passes --local-rank; older launchers pass --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _set_local_rank(args: argparse.Namespace) -> None:
    """What mmdet's train.py does: the launcher's rank for mmengine."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``train``'s command line on its own (``tools/train.py``)."""
    from . import command_parser
    args = command_parser(sys.modules[__name__]).parse_args(argv)
    _set_local_rank(args)
    return args


def _check_amp_device() -> None:
    """``--amp`` needs an accelerator: refuse it clearly elsewhere.

    mmengine's ``AmpOptimWrapper`` only runs on CUDA, NPU, MLU or MUSA
    devices (on a CPU machine it fails with a bare ``AssertionError`` deep
    in the Runner); bfloat16 autocast on CPU would also not help: mmcv's CPU
    ops (NMS, RoIAlign) take float32 only.
    """
    from mmengine.device import get_device
    device = get_device()
    if device not in ('cuda', 'npu', 'mlu', 'musa'):
        raise ValueError(
            f'--amp was given but this machine trains on {device!r}: '
            "mmengine's AmpOptimWrapper (automatic mixed precision) needs a "
            'CUDA, NPU, MLU or MUSA device. Drop --amp to train in float32 '
            'here, or run on a GPU machine.')


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides (as mmdet)."""
    if not osp.isfile(args.config):
        raise ValueError(
            f'config={args.config!r} does not exist: pass the path of a '
            'config file, e.g. configs/demo/ssd_r18_tiny_voc.py (`mmconvplug '
            'configs` lists the packaged ones).')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        _check_amp_device()
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(
                f'--amp needs optim_wrapper.type OptimWrapper, but the config '
                f'uses {wrapper!r}; set optim_wrapper.type="AmpOptimWrapper" '
                'in the config instead of passing --amp.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr', None)
        if not scale or 'base_batch_size' not in scale:
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr=dict(enable=False, '
                'base_batch_size=N) in the config; add it (N = the total '
                'batch size the learning rate was tuned for).')
        cfg.auto_scale_lr.enable = True

    # resume: a checkpoint path beats the latest one in work_dir
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise ValueError(
                f'--resume {args.resume!r}: no such checkpoint file; pass an '
                'existing .pth, or --resume alone to resume from the latest '
                'checkpoint in the work directory.')
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get('load_from') or cfg.get('resume'):
        # Refuse a folded checkpoint loaded into a variant model (and the
        # reverse), and name what does not fit, which mmengine's non-strict
        # loading would accept silently.
        add_checkpoint_fit_hook(cfg)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the runner in the config's scope (``mmdet`` / ``mmseg``)."""
    scope = cfg.get('default_scope', None)
    if scope in _SCOPE_MODULES:
        __import__(_SCOPE_MODULES[scope])
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo

        # Fewer repeated torch.compile compilations (as mmdet's train.py).
        setup_cache_size_limit_of_dynamo()
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    if scope is not None:
        init_default_scope(scope)
    return RUNNERS.build(cfg)


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Train as the parsed command line says; the exit status."""
    _set_local_rank(args)
    try:
        cfg = build_config(args)
        check_config(cfg, phase='train')
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    runner = build_runner(cfg)
    runner.train()
    return 0
