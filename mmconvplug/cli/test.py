"""``mmconvplug test`` (and ``tools/test.py``): test a checkpoint, folded.

The command line of mmdet's / mmseg's ``tools/test.py``. By default a
``FoldHook`` folds the model under test and checks its outputs on the first
batch; ``--no-fold`` tests it as trained, ``--compare`` runs both and prints
the metrics side by side. The work is :mod:`mmconvplug.apis.test`.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

from mmconvplug.apis import (
    DEFAULT_FOLD_TOLERANCE,
    check_config,
    format_side_by_side,
    load_test_config,
    run_test,
    test_unfolded_and_folded,
    with_test_hooks,
)
from mmconvplug.engine.checkpoint_fit import (
    FoldCheckpointMismatchError,
    IncompatibleKeysError,
)
from mmconvplug.utils import CorruptCheckpointError, UntrustedCheckpointError

DESCRIPTION = """test (and evaluate) a model, folded by default

The command line of mmdet's / mmseg's tools/test.py. --no-fold tests the
model as trained; --compare tests it unfolded and folded and prints both
metrics."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``test``'s options (mmdet's ``tools/test.py`` and ours)."""
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
    parser.add_argument('--tolerance', type=float,
                        default=DEFAULT_FOLD_TOLERANCE,
                        help='largest relative output error of the fold')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Test as the parsed command line says; the exit status."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    try:
        cfg = load_test_config(args.config, args.checkpoint,
                               args.cfg_options, args.work_dir,
                               args.launcher, args.out, args.show_dir)
        check_config(cfg, phase='test')
    except (ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    try:
        if not args.compare:
            metrics = run_test(with_test_hooks(cfg, not args.no_fold,
                                               args.fuse_bn, args.tolerance),
                               args.out)
            # The Runner logs the metrics, unless the config's log_level hides
            # them (e.g. a demo config saved with log_level='WARNING').
            print('metrics: ' + '  '.join(f'{k}: {v}'
                                          for k, v in metrics.items()))
            return 0
        metrics = test_unfolded_and_folded(cfg, args.fuse_bn,
                                           args.tolerance, args.out)
    except (FoldCheckpointMismatchError, IncompatibleKeysError,
            CorruptCheckpointError, UntrustedCheckpointError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(format_side_by_side(metrics['unfolded'], metrics['folded']))
    return 0
