"""``mmconvplug fold`` (and ``tools/fold.py``): fold a trained checkpoint.

Writes the folded checkpoint and its deploy config next to it, after the
folded weights loaded ``strict=True`` into the deploy model reproduce the
trained model's outputs; the work is
:func:`mmconvplug.apis.export_folded_checkpoint`.
"""
import argparse
import sys

from mmengine.config import DictAction

from mmconvplug.apis import DEFAULT_FOLD_TOLERANCE, export_folded_checkpoint
from mmconvplug.engine.checkpoint_fit import IncompatibleKeysError

DESCRIPTION = """fold a trained checkpoint's conv variants into plain convs

Writes OUT.pth (the folded weights) and the deploy config OUT.py next to
it, checked against the trained model first; never overwrites."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``fold``'s options."""
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='the trained checkpoint (.pth)')
    parser.add_argument('out', help='the folded checkpoint to write (.pth); '
                        'the deploy config goes next to it (.py)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config (key=value)')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='input size of the output check (default: the '
                        "test pipeline's fixed Resize, else 256 256)")
    parser.add_argument('--tolerance', type=float,
                        default=DEFAULT_FOLD_TOLERANCE,
                        help='largest relative output error accepted')


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Fold as the parsed command line says; the exit status."""
    if not args.out.endswith('.pth'):
        print(f'error: OUT={args.out!r} must end with .pth (the deploy '
              'config is written next to it with .py).', file=sys.stderr)
        return 2
    try:
        export = export_folded_checkpoint(
            args.config, args.checkpoint, args.out,
            cfg_options=args.cfg_options, input_shape=args.shape,
            tolerance=args.tolerance)
    except (ValueError, FileExistsError, FileNotFoundError,
            IncompatibleKeysError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(export.report.summary())
    print(export.verification)
    print(f'folded checkpoint: {export.checkpoint_path}')
    print(f'deploy config:     {export.config_path}')
    if export.dropped:
        print('left out of the folded checkpoint (training state, non-plain '
              'meta): ' + ', '.join(export.dropped))
    if export.stock_compatible:
        print('the deploy config uses only stock mmdet/mmseg types: no '
              'mmconvplug needed to test it.')
        with open(export.config_path) as file:
            ssd = 'SSDHead' in file.read()
        if ssd:
            print("note: stock mmdet <= 3.3.0 cannot test any SSD ('SSDHead' "
                  "object has no attribute 'loss_cls', mmdetection#11780): "
                  'test it with mmconvplug test (tools/test.py), or add the '
                  'one-line fix from mmconvplug/compat/ssd_head_predict.py '
                  'to mmdet.')
    else:
        print('the deploy config still needs mmconvplug for: '
              + ', '.join(export.plugin_types_left))
    return 0
