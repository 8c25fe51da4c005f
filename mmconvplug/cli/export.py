"""``mmconvplug export`` (and ``tools/export_onnx.py``): ONNX export.

Every model family (single-stage and two-stage detectors, segmentors) with
dynamic batch and spatial axes, written only after onnxruntime matches the
eager model (:func:`mmconvplug.deploy.export_checkpoint_onnx`); with
``--eval`` the config's test set and metric run through the exported
graphs beside PyTorch (:mod:`mmconvplug.deploy.evaluation`).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

DESCRIPTION = """export a model to ONNX with dynamic batch and spatial axes,
checked in onnxruntime; --eval re-measures the metric on the exported model

CONFIG/CHECKPOINT: a training config with its trained checkpoint (foldable
variants are folded first), or a deploy config with its folded checkpoint.
Single-stage detectors and segmentors export as one graph (opset >= 11);
two-stage detectors (Faster / Mask / Keypoint R-CNN) as an image graph and
RoI graphs (OUT.roi_*.onnx, opset >= 16), with OUT.deploy.json describing
them. Needs mmconvplug[deploy]."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``export``'s options."""
    parser.add_argument('config', help='the model config')
    parser.add_argument('checkpoint', help='its checkpoint (.pth)')
    parser.add_argument('out', help='the ONNX file to write (.onnx)')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='input size traced with (default: the test '
                        'pipeline\'s fixed Resize, else 256 256)')
    parser.add_argument('--batch-size', type=int, default=2,
                        help='batch size traced with')
    parser.add_argument('--check-batch-sizes', nargs='+', type=int,
                        default=[1, 3],
                        help='batch sizes checked in onnxruntime')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest relative error accepted')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset (default 17; two-stage needs >= 16, '
                        'the others >= 11)')
    parser.add_argument('--eval', action='store_true',
                        help='run the config\'s test dataloader and '
                        'evaluator through the exported model and print the '
                        'metric beside PyTorch\'s')
    parser.add_argument('--backend', nargs='+', default=['onnxruntime'],
                        choices=['onnxruntime', 'openvino'],
                        help='runtimes --eval runs (default onnxruntime)')
    parser.add_argument('--eval-json', default=None,
                        help='where --eval writes its metrics (default '
                        'OUT.eval.json)')
    parser.add_argument('--int8', action='store_true',
                        help='also write OUT.int8.onnx (static INT8 '
                        'post-training quantization: QDQ, per-channel '
                        'weights; single-stage detectors and segmentors), '
                        'print the folded kernels\' weight ranges, and with '
                        '--eval its metric beside fp32')
    parser.add_argument('--calib', type=int, default=32, metavar='N',
                        help='training images --int8 calibrates on '
                        '(default 32)')
    parser.add_argument('--max-images', type=int, default=None,
                        help='--eval on the first N test images only')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config (key=value)')


def _eval_json(args: argparse.Namespace) -> str:
    if args.eval_json:
        return args.eval_json
    stem = args.out[:-len('.onnx')] if args.out.endswith('.onnx') \
        else args.out
    return f'{stem}.eval.json'


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Export (and evaluate) as the parsed command line says; the exit
    status."""
    from mmconvplug.deploy import DeployDependencyError
    from mmconvplug.deploy.evaluation import (
        PYTORCH,
        evaluate_backends,
        load_deployed_model,
    )
    from mmconvplug.deploy.model_export import (
        export_model_onnx,
        load_folded,
        trace_images,
    )
    from mmconvplug.engine.checkpoint_fit import IncompatibleKeysError
    if args.int8:
        stem = args.out[:-len('.onnx')] if args.out.endswith('.onnx') \
            else args.out
        for path in (f'{stem}.int8.onnx', f'{stem}.int8.deploy.json'):
            if osp.lexists(path):
                print(f'error: Refusing to write {path!r}: the file already '
                      'exists. Choose another path or delete the file '
                      'first.', file=sys.stderr)
                return 2
    try:
        cfg, folded, report = load_folded(args.config, args.checkpoint,
                                          args.cfg_options)
        export = export_model_onnx(
            folded, trace_images(cfg, args.shape, args.batch_size), args.out,
            check_batch_sizes=args.check_batch_sizes,
            tolerance=args.tolerance, opset_version=args.opset)
    except (ValueError, FileExistsError, FileNotFoundError,
            DeployDependencyError, IncompatibleKeysError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(report.summary())
    for name, checks in export.checks.items():
        for check in checks:
            print(f'onnxruntime vs eager, {name} graph, {check}')
    for name, path in export.files.items():
        print(f'ONNX {name} graph: {path}')
    print(f'manifest: {export.manifest} ({export.family}, opset '
          f'{export.opset}, dynamic batch and spatial axes)')
    int8_manifest = None
    if args.int8:
        try:
            int8_manifest = _quantize(args, cfg, folded, export)
        except (ValueError, FileExistsError, DeployDependencyError) as error:
            print(f'error: {error}', file=sys.stderr)
            return 2
    if not args.eval:
        return 0
    try:
        models = {PYTORCH: folded}
        for backend in args.backend:
            models[backend] = load_deployed_model(cfg, export.manifest,
                                                  backend)
            if int8_manifest:
                models[f'{backend}-int8'] = load_deployed_model(
                    cfg, int8_manifest, backend)
        evaluation = evaluate_backends(cfg, models,
                                       max_images=args.max_images)
    except DeployDependencyError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    for line in evaluation.lines():
        print(line)
    path = _eval_json(args)
    evaluation.save_json(path, config=osp.abspath(args.config),
                         checkpoint=osp.abspath(args.checkpoint),
                         files=export.files)
    print(f'metrics: {path}')
    return 0


def _quantize(args: argparse.Namespace, cfg, folded, export) -> str:
    """Write OUT.int8.onnx and its manifest; print the calibration and the
    weight ranges; return the INT8 manifest."""
    from mmconvplug.analysis.tables import format_table
    from mmconvplug.deploy.model_export import derived_manifest
    from mmconvplug.deploy.quantize import (
        calibration_batches,
        quantize_int8,
        weight_range_table,
    )
    if export.family == 'two_stage':
        raise ValueError(
            '--int8 quantizes one-graph models (single-stage detectors and '
            'segmentors); a two-stage model\'s RoI graphs take features and '
            'RoIs, which image calibration does not cover. Leave out --int8.')
    stem = args.out[:-len('.onnx')] if args.out.endswith('.onnx') \
        else args.out
    int8_file, manifest = f'{stem}.int8.onnx', f'{stem}.int8.deploy.json'
    calibration = calibration_batches(cfg, folded, args.calib)
    quantize_int8(export.path, int8_file, calibration.batches)
    derived_manifest(export.manifest, {'image': int8_file}, manifest)
    print(f'INT8 (QDQ, per-channel weights, {calibration.note}): '
          f'{int8_file}')
    rows = [[r.name, 'x'.join(map(str, r.shape)),
             f'{max(-r.min, r.max):.3g}', f'{r.channel_absmax_median:.3g}',
             f'{r.spread:.2f}'] for r in weight_range_table(folded)]
    print(format_table(['conv', 'shape', 'max abs(w)', 'median channel max abs(w)',
                        'spread'], rows,
                       title='folded kernels: weight range per layer'))
    return manifest
