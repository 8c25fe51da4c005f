"""Test an mmdet or mmseg checkpoint, folded by default.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher ...]
        [--no-fold | --compare] [--fuse-bn] [--tolerance 1e-3]

The command line of mmdet's / mmseg's ``tools/test.py``. The plugin is
imported here (configs without ``custom_imports`` still work) and the
config's ``default_scope`` picks the library. By default a ``FoldHook`` is
added to ``custom_hooks`` (unless the config has one): the model under test
is folded and its outputs checked on the first batch. ``--no-fold`` tests
the model as trained; ``--compare`` runs both and prints the metrics side by
side. A ``CheckpointGuardHook`` refuses a folded checkpoint with the
training config (or the reverse) instead of testing random weights.

``--out``: mmdet: a ``.pkl`` of the predictions (``DumpDetResults``);
mmseg: a directory for the predicted maps. ``--show-dir``: painted results.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

import mmconvplug  # noqa: F401  (registers the variants and hooks)
from mmconvplug.fold import FoldCheckpointMismatchError
from mmconvplug.utils import (CorruptCheckpointError, UntrustedCheckpointError,
                              check_config)

SCOPES = ('mmdet', 'mmseg')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model, folded by default')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument(
        '--out', help='mmdet: predictions .pkl file; mmseg: directory for '
        'the predicted segmentation maps')
    parser.add_argument('--show-dir', help='directory for painted results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config (key=value)')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--no-fold', action='store_true',
                      help='test the model as trained (no folding)')
    mode.add_argument('--compare', action='store_true',
                      help='test unfolded and folded, print both metrics')
    parser.add_argument('--fuse-bn', action='store_true',
                        help='also fuse BatchNorms into the preceding convs')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest relative output error of the fold')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _scope(cfg: Config) -> str:
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(
            f'default_scope={scope!r} in the config: tools/test.py tests '
            f'mmdet and mmseg models, so it must be one of {SCOPES}. Inherit '
            "an mmdet:: or mmseg:: base config, or set default_scope.")
    return scope


def _set_outputs(cfg: Config, args: argparse.Namespace, scope: str) -> None:
    """--out / --show-dir, as mmdet's and mmseg's tools/test.py do them."""
    if args.show_dir:
        hooks = cfg.get('default_hooks') or {}
        if 'visualization' not in hooks:
            raise ValueError(
                '--show-dir needs default_hooks.visualization in the config '
                "(e.g. dict(type='DetVisualizationHook') for mmdet, "
                "dict(type='SegVisualizationHook') for mmseg).")
        hooks['visualization']['draw'] = True
        if scope == 'mmdet':
            hooks['visualization']['test_out_dir'] = osp.abspath(
                args.show_dir)
        else:
            cfg.visualizer['save_dir'] = osp.abspath(args.show_dir)
    if args.out and scope == 'mmdet' and not args.out.endswith(
            ('.pkl', '.pickle')):
        raise ValueError(f'--out {args.out!r}: mmdet predictions are dumped '
                         'as a pickle; use a .pkl path.')
    if args.out and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True


def _with_hooks(cfg: Config, fold: bool, args: argparse.Namespace) -> Config:
    """A copy of ``cfg`` with the checkpoint guard and (un)folding set."""
    cfg = copy.deepcopy(cfg)
    hooks = [h for h in cfg.get('custom_hooks') or []
             if h.get('type') not in ('CheckpointGuardHook', )]
    has_fold_hook = any(h.get('type') == 'FoldHook' for h in hooks)
    if not fold:
        hooks = [h for h in hooks if h.get('type') != 'FoldHook']
    elif not has_fold_hook:
        hooks.append(
            dict(type='FoldHook', fuse_bn=args.fuse_bn,
                 tolerance=args.tolerance))
    hooks.append(dict(type='CheckpointGuardHook'))
    cfg.custom_hooks = hooks
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command line (as mmdet's test.py)."""
    if not osp.isfile(args.config):
        raise ValueError(f'config={args.config!r} does not exist: pass the '
                         'path of a config file.')
    if not osp.isfile(args.checkpoint):
        raise ValueError(f'checkpoint={args.checkpoint!r} does not exist: '
                         'pass the path of a .pth file.')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    _set_outputs(cfg, args, _scope(cfg))
    return cfg


def run_test(cfg: Config, out: Optional[str] = None) -> Dict[str, float]:
    """Build a Runner from ``cfg`` in its scope and return its test metrics."""
    scope = _scope(cfg)
    __import__(scope)
    init_default_scope(scope)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    if out and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=out))
    return runner.test()


def _side_by_side(unfolded: Dict[str, float],
                  folded: Dict[str, float]) -> str:
    keys = sorted(set(unfolded) | set(folded))
    width = max([len(k) for k in keys] + [6])
    lines = [f'{"metric":{width}s}  {"unfolded":>12s}  {"folded":>12s}  '
             f'{"diff":>10s}']
    for key in keys:
        a, b = unfolded.get(key), folded.get(key)
        numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
        diff = f'{b - a:+10.4f}' if numeric else f'{"":>10s}'
        lines.append(f'{key:{width}s}  {_fmt(a):>12s}  {_fmt(b):>12s}  '
                     f'{diff}')
    return '\n'.join(lines)


def _fmt(value) -> str:
    return f'{value:.4f}' if isinstance(value, (int, float)) else str(value)


def _compare(cfg: Config, args: argparse.Namespace) -> Dict[str, dict]:
    """Test as trained, then folded; return both runs' metrics."""
    stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    metrics = {}
    for name, fold in (('unfolded', False), ('folded', True)):
        run_cfg = _with_hooks(cfg, fold, args)
        run_cfg.work_dir = osp.join(cfg.work_dir, name)
        run_cfg.experiment_name = f'{name}_{stamp}'
        if args.out and _scope(cfg) == 'mmseg':
            run_cfg.test_evaluator['output_dir'] = osp.join(args.out, name)
        out = (None if not args.out else
               f'{osp.splitext(args.out)[0]}_{name}{osp.splitext(args.out)[1]}')
        metrics[name] = run_test(run_cfg, out)
    return metrics


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = build_config(args)
        check_config(cfg, phase='test')
    except (ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    try:
        if not args.compare:
            run_test(_with_hooks(cfg, not args.no_fold, args), args.out)
            return 0
        metrics = _compare(cfg, args)
    except (FoldCheckpointMismatchError, CorruptCheckpointError,
            UntrustedCheckpointError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(_side_by_side(metrics['unfolded'], metrics['folded']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
