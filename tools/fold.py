"""Fold a trained checkpoint into plain convs, for evaluation and deployment.

    python tools/fold.py CONFIG CHECKPOINT OUT.pth [--cfg-options k=v ...]
        [--shape H W] [--tolerance 1e-3]

Writes ``OUT.pth`` (the folded weights and the checkpoint's ``meta`` as plain
data; training state dropped, so plain ``torch.load(weights_only=True)``
reads it without mmconvplug) and the deploy config ``OUT.py`` next to it. When every conv variant in the
model folds into a plain conv, the deploy config is the stock architecture
and needs no ``custom_imports``: test it with stock mmdet / mmseg tools
(``python mmdet/tools/test.py OUT.py OUT.pth``). Otherwise the layers that
stayed are listed and the deploy config keeps them.

Before writing anything the folded weights are loaded, ``strict=True``, into
the deploy config's model and its outputs are compared with the trained
model's on a random input; existing files are never overwritten.
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction

import mmconvplug  # noqa: F401  (registers the variants)
from mmconvplug.fold.export import export_folded_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Fold the conv variants of a trained checkpoint')
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='the trained checkpoint (.pth)')
    parser.add_argument('out', help='the folded checkpoint to write (.pth); '
                        'the deploy config goes next to it (.py)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config (key=value)')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='input size of the output check (default: the '
                        "test pipeline's fixed Resize, else 256 256)")
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest relative output error accepted')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not args.out.endswith('.pth'):
        print(f'error: OUT={args.out!r} must end with .pth (the deploy '
              'config is written next to it with .py).', file=sys.stderr)
        return 2
    try:
        export = export_folded_checkpoint(
            args.config, args.checkpoint, args.out,
            cfg_options=args.cfg_options, input_shape=args.shape,
            tolerance=args.tolerance)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
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
        if 'SSDHead' in open(export.config_path).read():
            print("note: stock mmdet <= 3.3.0 cannot test any SSD ('SSDHead' "
                  "object has no attribute 'loss_cls', mmdetection#11780): "
                  'test it with tools/test.py, or add the one-line fix '
                  'from mmconvplug/compat/ssd_head_predict.py to mmdet.')
    else:
        print('the deploy config still needs mmconvplug for: '
              + ', '.join(export.plugin_types_left))
    return 0


if __name__ == '__main__':
    sys.exit(main())
