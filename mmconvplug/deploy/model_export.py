"""Export a detector or segmentor as ONNX graphs plus a manifest, checked.

:func:`export_model_onnx` splits a model into its graphs
(:func:`~.graphs.deploy_graphs`: one for single-stage detectors and
segmentors; image + RoI graphs for two-stage detectors), traces each with
dynamic batch, spatial and RoI axes, runs every graph in onnxruntime at
other batch sizes and at another input size against the eager model, and
only then writes the files:

* ``OUT.onnx``: the image graph;
* ``OUT.roi_bbox.onnx``, ``OUT.roi_mask.onnx``, ``OUT.roi_keypoint.onnx``:
  a two-stage model's RoI graphs;
* ``OUT.deploy.json``: the manifest (family, files, input / output names,
  the nesting of each graph's outputs, opset), which
  :func:`~.evaluation.load_deployed_model` reads.

Supported opsets: single-stage detectors and segmentors from 11 (the conv
variants' floor, :data:`~.onnx_export.MIN_ONNX_OPSET`); two-stage detectors
from 16 (:data:`~.roi_align_onnx.ROI_ALIGN_MIN_OPSET`, ONNX ``RoiAlign``
with mmdet's ``aligned=True``). Older opsets are refused by name.
"""
import io
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from mmconvplug.analysis import compare_outputs
from mmconvplug.apis import init_model, load_config
from mmconvplug.apis.export import config_input_shape
from mmconvplug.convs.base import full_precision
from mmconvplug.fold import FoldReport, fold_model
from mmconvplug.utils import atomic_save
from mmconvplug.utils.torch_compat import torchscript_exporter_kwargs

from .graphs import (
    IMAGE_GRAPH,
    TWO_STAGE,
    GraphSpec,
    deploy_graphs,
    example_inputs,
)
from .onnx_export import OnnxCheck, _check_opset, newest_onnx_opset
from .roi_align_onnx import onnx_roi_align
from .runtimes import OnnxRuntimeSession, require

#: Manifest format version.
MANIFEST_VERSION = 1


def export_paths(out: str, graph_names: Sequence[str]) -> Dict[str, str]:
    """Where each graph and the manifest (key ``'manifest'``) go for
    ``out`` (``OUT.onnx``)."""
    stem = out[:-len('.onnx')] if out.endswith('.onnx') else out
    paths = {IMAGE_GRAPH: out}
    paths.update({name: f'{stem}.{name}.onnx'
                  for name in graph_names if name != IMAGE_GRAPH})
    paths['manifest'] = f'{stem}.deploy.json'
    return paths


@dataclass
class ModelExport:
    """What :func:`export_model_onnx` wrote and measured.

    Args:
        family (str): ``'single_stage'``, ``'segmentor'`` or
            ``'two_stage'``.
        files (dict[str, str]): graph name -> ``.onnx`` path.
        manifest (str): the manifest's path.
        opset (int): the ONNX opset written.
        checks (dict[str, list[OnnxCheck]]): graph name -> onnxruntime vs
            eager at each checked input.
    """

    family: str
    files: Dict[str, str]
    manifest: str
    opset: int
    checks: Dict[str, List[OnnxCheck]] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The image graph's file."""
        return self.files[IMAGE_GRAPH]

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for checks in self.checks.values()
                    for c in checks), default=0.0)


def _resolve_opset(graphs: List[GraphSpec], family: str,
                   opset_version: Optional[int]) -> int:
    floor = max(g.min_opset for g in graphs)
    if opset_version is None:
        return max(floor, min(17, newest_onnx_opset()))
    if opset_version < floor:
        raise ValueError(
            f'ONNX opset {opset_version} is too old for a {family} model: '
            f'its RoI heads need opset {floor} or newer (ONNX RoiAlign with '
            "coordinate_transformation_mode='half_pixel', mmdet's aligned="
            f'True). Pass opset_version={floor} or newer; single-stage '
            'detectors and segmentors export from opset 11.')
    return opset_version


def graph_bytes(graph: GraphSpec, inputs: Tuple[torch.Tensor, ...],
                opset_version: int) -> bytes:
    """Trace ``graph`` on ``inputs`` and return the serialized ONNX model
    (sets ``graph.output_names``)."""
    with torch.no_grad(), full_precision():
        num_outputs = len(graph.module(*inputs))
    graph.output_names = [f'output{i}' for i in range(num_outputs)]
    axes = dict(graph.dynamic_axes)
    axes.update({name: {0: graph.output_axis}
                 for name in graph.output_names})
    buffer = io.BytesIO()
    with torch.no_grad(), full_precision(), onnx_roi_align():
        torch.onnx.export(
            graph.module, inputs, buffer, input_names=graph.input_names,
            output_names=graph.output_names, dynamic_axes=axes,
            opset_version=opset_version, **torchscript_exporter_kwargs())
    return buffer.getvalue()


def _check_inputs(model: nn.Module, graphs: List[GraphSpec],
                  images: torch.Tensor, batch_sizes: Sequence[int],
                  num_rois: int) -> Dict[str, List[Tuple]]:
    """Inputs to check each graph on: random images at each batch size and,
    at the first size, at another input size (+32 px each side); RoI graphs
    get the eager features of those images and random RoIs."""
    generator = torch.Generator().manual_seed(0)
    _, channels, height, width = images.shape
    shapes = [(n, height, width) for n in batch_sizes]
    if batch_sizes:
        shapes.append((batch_sizes[0], height + 32, width + 32))
    checks = {g.name: [] for g in graphs}
    image_graph = graphs[0]
    for n, h, w in shapes:
        batch = torch.randn(n, channels, h, w, generator=generator)
        checks[IMAGE_GRAPH].append((batch, ))
        if len(graphs) == 1:
            continue
        with torch.no_grad(), full_precision():
            feats = image_graph.module._fn(batch)[0]
        for graph in graphs[1:]:
            checks[graph.name].append(
                example_inputs(graph, batch, feats, num_rois + n, generator))
    return checks


def _check_graph(data: bytes, graph: GraphSpec,
                 inputs: List[Tuple[torch.Tensor, ...]]) -> List[OnnxCheck]:
    session = OnnxRuntimeSession(data)
    checks = []
    for args in inputs:
        with torch.no_grad(), full_precision():
            expected = graph.module(*args)
        try:
            got = session(*[a.numpy() for a in args])
        except Exception as error:  # onnxruntime's own exception types
            raise ValueError(
                f'onnxruntime fails on the {graph.name} graph at input '
                f'shape {tuple(args[0].shape)}: {error}. A layer bakes a '
                'traced shape into the graph: make it trace-safe, or fold '
                'it first.') from error
        for ref, out in zip(expected, got):
            if tuple(out.shape) != tuple(ref.shape):
                raise ValueError(
                    f'The {graph.name} graph gives an output of shape '
                    f'{tuple(out.shape)} where the eager model gives '
                    f'{tuple(ref.shape)} (input {tuple(args[0].shape)}): '
                    'the graph baked in a traced shape.')
        difference = compare_outputs(
            list(zip(graph.output_names, expected)),
            [(n, torch.from_numpy(o))
             for n, o in zip(graph.output_names, got)],
            caller=f'the {graph.name} graph check')
        size = tuple(int(d) for d in args[0].shape[2:])
        checks.append(OnnxCheck(int(args[0].shape[0]), difference,
                                size if graph.name == IMAGE_GRAPH else None))
    return checks


def export_model_onnx(model: nn.Module,
                      images: torch.Tensor,
                      out: str,
                      check_batch_sizes: Sequence[int] = (1, 3),
                      tolerance: float = 1e-4,
                      opset_version: Optional[int] = None,
                      num_rois: int = 16,
                      overwrite: bool = False) -> ModelExport:
    """Export a detector / segmentor as graphs + manifest, checked first.

    Args:
        model (nn.Module): an mmdet detector or mmseg segmentor (fold it
            first to deploy plain convs); exported in eval mode.
        images (Tensor): ``(N, C, H, W)`` preprocessed batch to trace with.
        out (str): the image graph's ``.onnx`` path; the other files go
            beside it (:func:`export_paths`).
        check_batch_sizes (Sequence[int]): batch sizes checked in
            onnxruntime (the first also at ``H + 32, W + 32``). Defaults to
            (1, 3).
        tolerance (float): largest relative error accepted. Defaults to
            1e-4.
        opset_version (int, optional): ONNX opset. Defaults to None: 17
            (or the newest this torch writes, at least the family's floor).
        num_rois (int): RoIs traced with and checked (plus the batch size).
            Defaults to 16.
        overwrite (bool): replace existing files. Defaults to False.

    Returns:
        ModelExport: the files, the manifest and every check.

    Raises:
        DeployDependencyError: onnx / onnxruntime is not installed.
        FileExistsError: a file exists and ``overwrite`` is False.
        ValueError: the model is not deployable, the opset is outside the
            family's range, or a graph differs from the eager model by more
            than ``tolerance`` (nothing is written).
    """
    require('onnx')
    was_training = model.training
    model.eval()
    try:
        family, graphs = deploy_graphs(model, images, num_rois=num_rois)
        opset = _resolve_opset(graphs, family, opset_version)
        _check_opset(model, opset)
        paths = export_paths(out, [g.name for g in graphs])
        existing = [p for p in paths.values() if osp.lexists(p)]
        if existing and not overwrite:
            raise FileExistsError(
                f'Refusing to write {existing[0]!r}: the file already '
                'exists. Choose another path or delete the file first.')
        data = {}
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad(), full_precision():
            feats = (graphs[0].module._fn(images)[0]
                     if family == TWO_STAGE else None)
        for graph in graphs:
            inputs = example_inputs(graph, images, feats, num_rois, generator)
            data[graph.name] = graph_bytes(graph, inputs, opset)
        all_inputs = _check_inputs(model, graphs, images, check_batch_sizes,
                                   num_rois)
        checks = {}
        for graph in graphs:
            try:
                checks[graph.name] = _check_graph(
                    data[graph.name], graph, all_inputs[graph.name])
            except ValueError as error:
                raise ValueError(
                    f'{error} (nothing was written to {out!r})') from error
            worst = max(checks[graph.name], key=lambda c: c.max_rel_error,
                        default=None)
            if worst is not None and worst.max_rel_error > tolerance:
                raise ValueError(
                    f'The {graph.name} graph differs from the eager model '
                    f'at {worst} (tolerance {tolerance:g}); nothing was '
                    f'written to {out!r}. A layer computes differently when '
                    'traced: make it trace-safe, or fold it first.')
    finally:
        model.train(was_training)
    manifest = dict(
        version=MANIFEST_VERSION, family=family, opset=opset,
        graphs={g.name: dict(file=osp.basename(paths[g.name]),
                             inputs=g.input_names, outputs=g.output_names,
                             structure=g.structure) for g in graphs})
    _write_all(paths, data, manifest, overwrite)
    return ModelExport(family,
                       {g.name: osp.abspath(paths[g.name]) for g in graphs},
                       osp.abspath(paths['manifest']), opset, checks)


def _write_all(paths: Dict[str, str], data: Dict[str, bytes],
               manifest: dict, overwrite: bool) -> None:
    """Write every graph, then the manifest; remove what was written if any
    write fails (no half export)."""
    written = []
    try:
        for name, blob in data.items():
            atomic_save(blob, paths[name], overwrite=overwrite,
                        save_fn=lambda b, file: file.write(b))
            written.append(paths[name])
        text = json.dumps(manifest, indent=1).encode()
        atomic_save(text, paths['manifest'], overwrite=overwrite,
                    save_fn=lambda b, file: file.write(b))
    except BaseException:
        for path in written:
            if osp.exists(path):
                os.remove(path)
        raise


def load_folded(config: str, checkpoint: str,
                cfg_options: Optional[dict] = None
                ) -> Tuple[Config, nn.Module, FoldReport]:
    """``config``'s model with ``checkpoint`` loaded strictly
    (:func:`~mmconvplug.apis.init_model`), folded, in eval mode; with the
    loaded config and the fold report."""
    cfg = load_config(config, cfg_options)
    model = init_model(cfg, checkpoint)
    folded, report = fold_model(model, return_report=True)
    return cfg, folded.eval(), report


def trace_images(cfg: Config, input_shape: Optional[Sequence[int]] = None,
                 batch_size: int = 2) -> torch.Tensor:
    """A random ``(batch_size, C, H, W)`` batch to trace with: ``(H, W)``
    from ``input_shape`` or the test pipeline's fixed Resize
    (:func:`~mmconvplug.apis.export.config_input_shape`)."""
    height, width = input_shape or config_input_shape(cfg)
    channels = int((cfg.model.get('backbone') or {}).get('in_channels', 3))
    generator = torch.Generator().manual_seed(1)
    return torch.randn(batch_size, channels, height, width,
                       generator=generator)


def export_checkpoint_onnx(config: str,
                           checkpoint: str,
                           out: str,
                           input_shape: Optional[Sequence[int]] = None,
                           batch_size: int = 2,
                           check_batch_sizes: Sequence[int] = (1, 3),
                           tolerance: float = 1e-4,
                           cfg_options: Optional[dict] = None,
                           opset_version: Optional[int] = None
                           ) -> Tuple[ModelExport, FoldReport]:
    """Build ``config``'s model, load ``checkpoint``, fold, export to ONNX.

    Works for a training config with its trained checkpoint (the foldable
    variants are folded first; the rest, e.g. CondConv, are traced as they
    are) and for a ``tools/fold.py`` deploy config with its folded
    checkpoint. Every family: single-stage detectors, segmentors, two-stage
    detectors (image + RoI graphs, see :func:`export_model_onnx`).

    Args:
        config (str): the model config.
        checkpoint (str): its checkpoint; loaded with ``strict=True``.
        out (str): the image graph's ``.onnx`` file (nothing is
            overwritten; the other files go beside it).
        input_shape (Sequence[int], optional): ``(H, W)`` of the traced
            input. Defaults to None: the test pipeline's fixed Resize, else
            256x256.
        batch_size (int): batch size traced with. Defaults to 2.
        check_batch_sizes (Sequence[int]): batch sizes checked in
            onnxruntime. Defaults to (1, 3).
        tolerance (float): largest relative error accepted. Defaults to
            1e-4.
        cfg_options (dict, optional): overrides merged into the config.
        opset_version (int, optional): ONNX opset (see
            :func:`export_model_onnx`). Defaults to None.

    Returns:
        tuple[ModelExport, FoldReport]: the export and what was folded.

    Raises:
        FileExistsError, ValueError, DeployDependencyError: as
            :func:`export_model_onnx`.
    """
    paths = export_paths(out, [])
    for path in (out, paths['manifest']):
        if osp.lexists(path):
            raise FileExistsError(
                f'Refusing to write {path!r}: the file already exists. '
                'Choose another path or delete the file first.')
    cfg, folded, report = load_folded(config, checkpoint, cfg_options)
    images = trace_images(cfg, input_shape, batch_size)
    export = export_model_onnx(folded, images, out,
                               check_batch_sizes=check_batch_sizes,
                               tolerance=tolerance,
                               opset_version=opset_version)
    return export, report


def derived_manifest(manifest: str, files: Dict[str, str], out: str,
                     overwrite: bool = False) -> str:
    """A copy of ``manifest`` with some graphs' files replaced (e.g. the
    INT8 image graph), written to ``out``.

    Args:
        manifest (str): the export's ``OUT.deploy.json``.
        files (dict[str, str]): graph name -> the new ``.onnx`` file (in
            the same folder as ``out``).
        out (str): the new manifest.
        overwrite (bool): replace an existing ``out``. Defaults to False.

    Returns:
        str: ``out``.
    """
    with open(manifest) as f:
        data = json.load(f)
    for name, path in files.items():
        if name not in data['graphs']:
            raise ValueError(f'{manifest!r} has no {name} graph.')
        data['graphs'][name]['file'] = osp.relpath(
            path, osp.dirname(osp.abspath(out)))
    atomic_save(json.dumps(data, indent=1).encode(), out,
                overwrite=overwrite, save_fn=lambda b, file: file.write(b))
    return out
