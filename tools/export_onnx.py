"""Export a model to ONNX with a dynamic batch axis, checked in onnxruntime.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]
        [--batch-size 2] [--check-batch-sizes 1 3] [--tolerance 1e-4]
        [--cfg-options k=v ...]

CONFIG/CHECKPOINT: a training config with its trained checkpoint (the
foldable conv variants are folded first; CondConv and SCConv are traced as
they are), or a ``tools/fold.py`` deploy config with its folded checkpoint.
The graph takes the preprocessed image batch and returns the raw head
outputs (``mode='tensor'``); it is written only after onnxruntime matches
the eager model at every checked batch size. Single-stage detectors (SSD)
and segmentors. Needs ``pip install mmconvplug[deploy]``.
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction

import mmconvplug  # noqa: F401  (registers the variants)
from mmconvplug.deploy import DeployDependencyError, export_checkpoint_onnx


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a model to ONNX (dynamic batch axis)')
    parser.add_argument('config', help='the model config')
    parser.add_argument('checkpoint', help='its checkpoint (.pth)')
    parser.add_argument('out', help='the ONNX file to write (.onnx)')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='input size (default: the test pipeline\'s '
                        'fixed Resize, else 256 256)')
    parser.add_argument('--batch-size', type=int, default=2,
                        help='batch size traced with')
    parser.add_argument('--check-batch-sizes', nargs='+', type=int,
                        default=[1, 3],
                        help='batch sizes checked in onnxruntime')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest relative error accepted')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config (key=value)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        export, report = export_checkpoint_onnx(
            args.config, args.checkpoint, args.out, input_shape=args.shape,
            batch_size=args.batch_size,
            check_batch_sizes=args.check_batch_sizes,
            tolerance=args.tolerance, cfg_options=args.cfg_options)
    except (ValueError, FileExistsError, FileNotFoundError,
            DeployDependencyError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(report.summary())
    for check in export.checks:
        print(f'onnxruntime vs eager, {check}')
    print(f'ONNX model: {export.path} ({len(export.output_names)} outputs, '
          'dynamic batch axis)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
