"""``mmconvplug export`` (and ``tools/export_onnx.py``): ONNX export.

A model with a dynamic batch axis, written only after onnxruntime matches
the eager model at every checked batch size; the work is
:func:`mmconvplug.deploy.export_checkpoint_onnx`.
"""
import argparse
import sys

from mmengine.config import DictAction

DESCRIPTION = """export a model to ONNX with a dynamic batch axis, checked
in onnxruntime

CONFIG/CHECKPOINT: a training config with its trained checkpoint (foldable
variants are folded first), or a deploy config with its folded checkpoint.
Single-stage detectors (SSD) and segmentors. Needs mmconvplug[deploy]."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``export``'s options."""
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


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Export as the parsed command line says; the exit status."""
    from mmconvplug.deploy import DeployDependencyError, export_checkpoint_onnx
    from mmconvplug.engine.checkpoint_fit import IncompatibleKeysError
    try:
        export, report = export_checkpoint_onnx(
            args.config, args.checkpoint, args.out, input_shape=args.shape,
            batch_size=args.batch_size,
            check_batch_sizes=args.check_batch_sizes,
            tolerance=args.tolerance, cfg_options=args.cfg_options)
    except (ValueError, FileExistsError, FileNotFoundError,
            DeployDependencyError, IncompatibleKeysError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(report.summary())
    for check in export.checks:
        print(f'onnxruntime vs eager, {check}')
    print(f'ONNX model: {export.path} ({len(export.output_names)} outputs, '
          'dynamic batch axis)')
    return 0
