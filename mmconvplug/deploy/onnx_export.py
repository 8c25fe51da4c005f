"""Export one module to ONNX with a dynamic batch axis, checked by
onnxruntime.

:func:`export_onnx` exports any module (a conv layer, a backbone, a folded
single-stage detector or segmentor) traced on example inputs, with axis 0
of the input and of every output dynamic, then runs the ONNX graph in
onnxruntime at other batch sizes and compares it with the eager model
(:func:`check_onnx`). Nothing is written unless every check passes. Whole
detectors and segmentors, two-stage ones included, export through
:mod:`.model_export` (``tools/export_onnx.py``).

An mmengine ``BaseModel`` (mmdet detector, mmseg segmentor) is exported in
``mode='tensor'``: the input is the preprocessed image batch (normalised,
padded: what ``model.data_preprocessor`` gives) and the outputs are the raw
head outputs, flattened in order (SSD: every level's class scores, then
every level's box deltas; an mmseg ``EncoderDecoder``: the decode head's
logits). Post-processing (anchor decoding, NMS, resizing) stays in Python,
as in mmdet's and mmseg's own tensor mode. A two-stage detector's tensor
mode needs image metadata: :mod:`.model_export` splits it instead.

Uses torch's TorchScript-based exporter (``torch.jit.trace``), so the same
trace-safety rules as ``torch.jit.trace`` apply; onnx and onnxruntime come
with ``pip install mmconvplug[deploy]``.
"""
import io
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmconvplug.analysis import (
    OutputDifference,
    TensorModeForward,
    compare_outputs,
    flatten_tensors,
)
from mmconvplug.convs.base import full_precision, is_conv_variant
from mmconvplug.utils import atomic_save
from mmconvplug.utils.torch_compat import torchscript_exporter_kwargs

from .runtimes import require

#: The oldest ONNX opset every conv variant exports at (mmdeploy's default;
#: torch exports CondConv's ``F.unfold`` from opset 11 on).
MIN_ONNX_OPSET = 11

#: Name of the graph input.
INPUT_NAME = 'inputs'
#: Name of the dynamic axis 0.
BATCH_AXIS = 'batch'


def _require(module: str):
    return require(module)


class TensorOutputs(TensorModeForward):
    """``model`` as a module of one image-batch tensor returning a tuple.

    An mmengine ``BaseModel`` runs in ``mode='tensor'`` (no data samples);
    any other module is called on the input. Nested outputs (lists of
    feature levels, dicts) are flattened in order
    (:func:`~mmconvplug.analysis.flatten_tensors`).

    Args:
        model (nn.Module): the model, in eval mode.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, None)

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(t for _, t in flatten_tensors(super().forward(inputs)))


@dataclass
class OnnxCheck:
    """onnxruntime against the eager model at one batch size."""

    batch_size: int
    difference: OutputDifference
    #: ``(H, W)`` of the checked input, where it is not the traced one.
    input_size: Optional[Tuple[int, int]] = None

    @property
    def max_rel_error(self) -> float:
        return self.difference.max_rel_error

    def __str__(self) -> str:
        size = (f' at {self.input_size[0]}x{self.input_size[1]}'
                if self.input_size else '')
        return f'batch {self.batch_size}{size}: {self.difference}'


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote and measured."""

    path: str
    output_names: List[str]
    checks: List[OnnxCheck] = field(default_factory=list)

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for c in self.checks), default=0.0)


def _check_exportable(model: nn.Module) -> None:
    """Refuse a two-stage detector: its tensor mode needs image metadata
    (the RPN's proposals), which a traced graph of one tensor cannot take."""
    try:
        from mmdet.models.detectors import TwoStageDetector
    except ImportError:  # no mmdet installed: no two-stage detectors either
        return
    if isinstance(model, TwoStageDetector):
        raise ValueError(
            f'{type(model).__name__} is a two-stage detector: its '
            "mode='tensor' forward needs per-image metadata for the RPN, so "
            'it does not export as a graph of one image tensor. Export it '
            'with mmconvplug.deploy.export_model_onnx (an image graph and '
            'RoI graphs, opset >= 16) or `mmconvplug export`.')


def newest_onnx_opset() -> int:
    """The newest opset the installed torch's TorchScript exporter writes."""
    from torch.onnx import _constants
    return int(getattr(_constants, 'ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET',
                       _constants.ONNX_MAX_OPSET))


def _check_opset(model: nn.Module, opset_version: Optional[int]) -> None:
    """Refuse, for a model holding an unfolded conv variant, an opset
    outside :data:`MIN_ONNX_OPSET` .. :func:`newest_onnx_opset` (the range
    every variant is tested in)."""
    newest = newest_onnx_opset()
    if opset_version is None or MIN_ONNX_OPSET <= opset_version <= newest:
        return
    variants = sorted({type(m).__name__ for m in model.modules()
                       if is_conv_variant(m)})
    if not variants:
        return  # plain layers: torch decides
    if opset_version < MIN_ONNX_OPSET:
        raise ValueError(
            f'ONNX opset {opset_version} is older than the conv variants '
            f'in this model ({", ".join(variants)}) export at: they need '
            f'opset {MIN_ONNX_OPSET} or newer (tested from '
            f'{MIN_ONNX_OPSET} to {newest}, the newest this torch\'s '
            f'TorchScript exporter writes). Pass opset_version='
            f'{MIN_ONNX_OPSET} or newer (mmdeploy\'s default is 11), or '
            'fold the model first (mmconvplug.fold_model) if it folds '
            'completely.')
    raise ValueError(
        f'ONNX opset {opset_version} is newer than this torch\'s '
        f'TorchScript exporter supports (newest: opset {newest}); the conv '
        f'variants in this model ({", ".join(variants)}) are tested from '
        f'opset {MIN_ONNX_OPSET} to {newest}. Pass opset_version={newest} '
        'or older.')


def onnx_bytes(model: nn.Module,
               example_inputs: torch.Tensor,
               dynamic_batch: bool = True,
               opset_version: Optional[int] = None) -> Tuple[bytes, List[str]]:
    """Export ``model`` (wrapped by :class:`TensorOutputs`) to ONNX in memory.

    Args:
        model (nn.Module): the model; exported in eval mode with autocast
            off (its train/eval mode is restored afterwards).
        example_inputs (Tensor): an image batch ``(N, C, H, W)`` to trace
            with.
        dynamic_batch (bool): make axis 0 of the input and of every output
            dynamic. Defaults to True.
        opset_version (int, optional): ONNX opset; with a conv variant in
            the model, :data:`MIN_ONNX_OPSET` (11) up to
            :func:`newest_onnx_opset`. Defaults to None (torch's default).

    Returns:
        tuple[bytes, list[str]]: the serialized ONNX model and its output
        names (``output0``, ``output1``...).

    Raises:
        ValueError: ``model`` is a two-stage detector (see the module
            docstring), or it holds a conv variant and ``opset_version`` is
            outside :data:`MIN_ONNX_OPSET` .. :func:`newest_onnx_opset`.
    """
    _check_exportable(model)
    _check_opset(model, opset_version)
    wrapper = TensorOutputs(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), full_precision():
            num_outputs = len(wrapper(example_inputs))
            names = [f'output{i}' for i in range(num_outputs)]
            axes = ({name: {0: BATCH_AXIS}
                     for name in [INPUT_NAME] + names}
                    if dynamic_batch else None)
            buffer = io.BytesIO()
            torch.onnx.export(
                wrapper, (example_inputs, ), buffer,
                input_names=[INPUT_NAME], output_names=names,
                dynamic_axes=axes, opset_version=opset_version,
                **torchscript_exporter_kwargs())
    finally:
        model.train(was_training)
    return buffer.getvalue(), names


def check_onnx(onnx_model: bytes,
               model: nn.Module,
               inputs: Sequence[torch.Tensor]) -> List[OnnxCheck]:
    """Run ``onnx_model`` in onnxruntime on each input, compare with eager.

    The relative error of an output is ``max|onnx - eager| / max|eager|``
    (:func:`~mmconvplug.analysis.compare_outputs`, as
    :func:`~mmconvplug.fold.verify_fold` measures it); each check holds the
    maxima over the outputs.

    Args:
        onnx_model (bytes): a serialized ONNX model from :func:`onnx_bytes`.
        model (nn.Module): the eager model it was exported from.
        inputs (Sequence[Tensor]): image batches, e.g. at batch sizes other
            than the one traced.

    Returns:
        list[OnnxCheck]: one per input.

    Raises:
        DeployDependencyError: onnxruntime is not installed.
    """
    ort = _require('onnxruntime')
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(
        onnx_model, options, providers=['CPUExecutionProvider'])
    wrapper = TensorOutputs(model)
    was_training = model.training
    model.eval()
    checks = []
    try:
        for batch in inputs:
            with torch.no_grad(), full_precision():
                expected = wrapper(batch)
            try:
                got = session.run(None, {INPUT_NAME: batch.cpu().numpy()})
            except Exception as error:  # onnxruntime's own exception types
                raise ValueError(
                    f'onnxruntime fails on the exported model at batch size '
                    f'{batch.shape[0]}: {error}. A layer bakes the traced '
                    'batch size into the graph: make it trace-safe, or fold '
                    'it first.') from error
            if len(got) != len(expected):
                raise ValueError(
                    f'The ONNX model gives {len(got)} outputs, the eager '
                    f'model {len(expected)}.')
            for ref, out in zip(expected, got):
                if tuple(out.shape) != tuple(ref.shape):
                    raise ValueError(
                        f'At batch size {batch.shape[0]} an ONNX output has '
                        f'shape {tuple(out.shape)}, the eager one '
                        f'{tuple(ref.shape)}: the graph baked in a traced '
                        'shape.')
            names = [f'output{i}' for i in range(len(expected))]
            difference = compare_outputs(
                list(zip(names, expected)),
                [(n, torch.from_numpy(o)) for n, o in zip(names, got)],
                caller='check_onnx')
            checks.append(OnnxCheck(int(batch.shape[0]), difference))
    finally:
        model.train(was_training)
    return checks


def export_onnx(model: nn.Module,
                example_inputs: torch.Tensor,
                path: str,
                check_batch_sizes: Sequence[int] = (1, 3),
                tolerance: float = 1e-4,
                opset_version: Optional[int] = None,
                overwrite: bool = False) -> OnnxExport:
    """Export ``model`` to ``path`` with a dynamic batch axis, checked first.

    The model is traced on ``example_inputs``; the ONNX graph is then run in
    onnxruntime on random batches of each size in ``check_batch_sizes``
    (same ``C, H, W``) and compared with the eager model. The file is
    written (atomically) only when every check is within ``tolerance``.

    Args:
        model (nn.Module): the model to export (fold it first to deploy plain
            convs: :func:`~mmconvplug.fold.fold_model`).
        example_inputs (Tensor): ``(N, C, H, W)`` batch to trace with.
        path (str): the ``.onnx`` file to write.
        check_batch_sizes (Sequence[int]): batch sizes checked in
            onnxruntime. Defaults to (1, 3).
        tolerance (float): largest relative error accepted. Defaults to 1e-4.
        opset_version (int, optional): ONNX opset. Defaults to None.
        overwrite (bool): replace an existing ``path``. Defaults to False.

    Returns:
        OnnxExport: the path, output names and the check at each batch size.

    Raises:
        DeployDependencyError: onnx / onnxruntime is not installed.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: onnxruntime's outputs differ from the eager ones by more
            than ``tolerance`` at some batch size, or ``model`` is a
            two-stage detector (nothing is written).
    """
    _require('onnx')
    if osp.lexists(path) and not overwrite:
        raise FileExistsError(
            f'Refusing to write {path!r}: the file already exists. Choose '
            'another path or delete the file first.')
    data, names = onnx_bytes(model, example_inputs,
                             opset_version=opset_version)
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.randn(n, *example_inputs.shape[1:], generator=generator)
        for n in check_batch_sizes
    ]
    try:
        checks = check_onnx(data, model, batches)
    except ValueError as error:
        raise ValueError(f'{error} (nothing was written to {path!r})') \
            from error
    worst = max(checks, key=lambda c: c.max_rel_error, default=None)
    if worst is not None and worst.max_rel_error > tolerance:
        raise ValueError(
            f'The ONNX export differs from the eager model at {worst} '
            f'(tolerance {tolerance:g}); nothing was written. A layer '
            'computes differently when traced (e.g. it depends on the batch '
            'size in Python): make it trace-safe, or fold it first.')
    atomic_save(data, path, overwrite=overwrite,
                save_fn=lambda blob, file: file.write(blob))
    return OnnxExport(osp.abspath(path), names, checks)
