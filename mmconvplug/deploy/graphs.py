"""The graphs a model deploys as: what goes into ONNX and what stays Python.

Only learned computation is exported; everything mmdet / mmseg do after it
(anchor decoding, NMS, proposal selection, mask pasting, resizing) stays
their own Python code, run unchanged by :mod:`.backend_model`.

* **Single-stage detector** (SSD...) and **segmentor** (mmseg
  ``EncoderDecoder``): one graph, image -> raw head outputs (what the
  model's ``mode='tensor'`` forward returns; SSD: every level's class
  scores, then its box deltas; a segmentor: the decode head's logits).
* **Two-stage detector** (Faster / Mask / Keypoint R-CNN): the image graph,
  image -> (multi-level features, the RPN's raw outputs), and one RoI graph
  per RoI branch, (multi-level features, RoIs) -> that branch's raw outputs:
  ``roi_bbox`` (class scores, box deltas), ``roi_mask`` (mask logits),
  ``roi_keypoint`` (heatmaps). mmdet runs the box branch on the proposals
  and the mask / keypoint branches on the detections, so the branches are
  separate graphs. RoIs are mmdet's ``(K, 5)``: image index, ``x1, y1, x2,
  y2``; the RoI graphs need opset >= 16 (:mod:`.roi_align_onnx`).

Every graph has a dynamic batch axis and dynamic spatial axes (images and
features), and a dynamic RoI axis.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmconvplug.analysis import flatten_tensors

from .roi_align_onnx import ROI_ALIGN_MIN_OPSET
from .roi_extractor import TraceableRoIExtractor

#: Graph name of the image graph (the only graph of a one-graph model).
IMAGE_GRAPH = 'image'
#: RoI graph names, by the RoI head's branch they run.
ROI_GRAPHS = {
    'roi_bbox': ('bbox_roi_extractor', 'bbox_head'),
    'roi_mask': ('mask_roi_extractor', 'mask_head'),
    'roi_keypoint': ('keypoint_roi_extractor', 'keypoint_head'),
}
#: Families: how the model is split.
SINGLE_STAGE, SEGMENTOR, TWO_STAGE = 'single_stage', 'segmentor', 'two_stage'


def structure_of(value: Any) -> Any:
    """The nesting of ``value`` with every tensor replaced by None (lists
    for tuples; JSON-serialisable)."""
    if isinstance(value, torch.Tensor):
        return None
    if isinstance(value, (list, tuple)):
        return [structure_of(v) for v in value]
    raise TypeError(f'Cannot export an output of type {type(value)}: only '
                    'tensors and (nested) lists / tuples of tensors.')


def unflatten(structure: Any, flat: Sequence[Any]) -> Any:
    """Inverse of flattening: rebuild ``structure`` (from
    :func:`structure_of`) from the flat outputs, in order."""
    items = iter(flat)

    def build(node):
        if node is None:
            return next(items)
        return [build(child) for child in node]

    value = build(structure)
    if next(items, None) is not None:
        raise ValueError('More ONNX outputs than the recorded structure.')
    return value


def model_family(model: nn.Module) -> str:
    """:data:`SINGLE_STAGE`, :data:`SEGMENTOR` or :data:`TWO_STAGE`.

    Raises:
        ValueError: the model is none of mmdet's single- / two-stage
            detectors or mmseg's encoder-decoder segmentors.
    """
    try:
        from mmdet.models.detectors import (
            SingleStageDetector,
            TwoStageDetector,
        )
        if isinstance(model, TwoStageDetector):
            return TWO_STAGE
        if isinstance(model, SingleStageDetector):
            return SINGLE_STAGE
    except ImportError:
        pass
    try:
        from mmseg.models.segmentors import EncoderDecoder
        if isinstance(model, EncoderDecoder):
            return SEGMENTOR
    except ImportError:
        pass
    raise ValueError(
        f'{type(model).__name__} is not a deployable model here: the export '
        "and its metric know mmdet's single-stage (SSD, RetinaNet...) and "
        "two-stage (Faster / Mask / Keypoint R-CNN) detectors and mmseg's "
        'EncoderDecoder segmentors. Export another module with '
        'mmconvplug.deploy.export_onnx.')


class FlatOutputs(nn.Module):
    """``fn(*inputs)`` with its nested tensor outputs flattened in order.

    Args:
        fn (Callable): the computation (uses modules of ``owner``).
        owner (nn.Module): the module holding ``fn``'s parameters.
    """

    def __init__(self, fn: Callable, owner: nn.Module) -> None:
        super().__init__()
        self.owner = owner
        self._fn = fn
        # torch.onnx.export restores the traced module's mode on the whole
        # tree: start in the owner's (eval) mode so it restores that one.
        self.train(owner.training)

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(t for _, t in flatten_tensors(self._fn(*inputs)))


@dataclass
class GraphSpec:
    """One graph of a deployed model.

    Args:
        name (str): :data:`IMAGE_GRAPH` or a key of :data:`ROI_GRAPHS`.
        module (FlatOutputs): what is traced.
        input_names (list[str]): graph inputs, in order.
        dynamic_axes (dict): ``{input name: {axis: axis name}}``; outputs
            get axis 0 named ``output_axis``.
        output_axis (str): the name of every output's axis 0.
        min_opset (int): the oldest opset this graph exports at.
        structure (Any): nesting of the eager outputs
            (:func:`structure_of`), filled by :func:`record_structure`.
    """

    name: str
    module: nn.Module
    input_names: List[str]
    dynamic_axes: Dict[str, Dict[int, str]]
    output_axis: str
    min_opset: int = 11
    structure: Any = None
    output_names: List[str] = field(default_factory=list)


def _image_axes() -> Dict[str, Dict[int, str]]:
    return {'inputs': {0: 'batch', 2: 'height', 3: 'width'}}


def _feature_names(num_levels: int) -> List[str]:
    return [f'feat{i}' for i in range(num_levels)]


def image_graph(model: nn.Module, family: str) -> GraphSpec:
    """The image graph of ``model`` (see the module docstring)."""
    if family == TWO_STAGE:

        def fn(inputs):
            feats = model.extract_feat(inputs)
            return list(feats), list(model.rpn_head(feats))
    else:

        def fn(inputs):
            return model._forward(inputs)

    return GraphSpec(IMAGE_GRAPH, FlatOutputs(fn, model), ['inputs'],
                     _image_axes(), 'batch')


def roi_graph(model: nn.Module, name: str, num_levels: int) -> GraphSpec:
    """The RoI graph ``name`` (a key of :data:`ROI_GRAPHS`) of a two-stage
    ``model`` whose neck gives ``num_levels`` feature maps."""
    extractor_name, head_name = ROI_GRAPHS[name]
    roi_head = model.roi_head
    stock = getattr(roi_head, extractor_name)
    extractor = TraceableRoIExtractor(stock)
    head = getattr(roi_head, head_name)
    num_inputs = stock.num_inputs

    def fn(*inputs):
        feats, rois = list(inputs[:-1]), inputs[-1]
        out = head(extractor(feats, rois))
        return list(out) if isinstance(out, (tuple, list)) else out

    # The extractor pools from the first ``num_inputs`` levels only (FPN's
    # extra P6 is the RPN's): the graph takes those.
    names = _feature_names(min(num_levels, num_inputs))
    axes = {n: {0: 'batch', 2: f'{n}_height', 3: f'{n}_width'}
            for n in names}
    axes['rois'] = {0: 'num_rois'}
    return GraphSpec(name, FlatOutputs(fn, roi_head), names + ['rois'], axes,
                     'num_rois', min_opset=ROI_ALIGN_MIN_OPSET)


def roi_branches(model: nn.Module) -> List[str]:
    """The RoI graphs a two-stage ``model`` has, in :data:`ROI_GRAPHS`
    order."""
    roi_head = model.roi_head
    branches = []
    for name, (extractor, head) in ROI_GRAPHS.items():
        if getattr(roi_head, head, None) is not None and \
                getattr(roi_head, extractor, None) is not None:
            branches.append(name)
    if getattr(roi_head, 'with_shared_head', False):
        raise ValueError(
            'A RoI head with a shared head (ResNet C4 models) is not '
            'exported: its shared layers run between the RoI extractor and '
            'the heads. Use an FPN model.')
    if type(roi_head).__name__ not in ('StandardRoIHead', 'KeypointRoIHead'):
        raise ValueError(
            f'{type(roi_head).__name__} is not exported: the two-graph split '
            "knows mmdet's StandardRoIHead (Faster / Mask R-CNN) and "
            "mmconvplug's KeypointRoIHead. Cascade heads run several stages "
            'in Python between RoI graphs.')
    return branches


def deploy_graphs(model: nn.Module, images: torch.Tensor,
                  num_rois: int = 8) -> Tuple[str, List[GraphSpec]]:
    """The family of ``model`` (in eval mode) and its graphs, with the
    eager outputs' structures recorded on ``images`` ``(N, C, H, W)``.

    Raises:
        ValueError: the model is not deployable (:func:`model_family`,
            :func:`roi_branches`).
    """
    family = model_family(model)
    image = image_graph(model, family)
    graphs = [image]
    if family == TWO_STAGE:
        branches = roi_branches(model)
    with torch.no_grad():
        out = image.module._fn(images)
        image.structure = structure_of(out)
        if family != TWO_STAGE:
            return family, graphs
        feats = out[0]
        generator = torch.Generator().manual_seed(0)
        for name in branches:
            graph = roi_graph(model, name, len(feats))
            rois = example_rois(feats, tuple(images.shape[2:]), num_rois,
                                generator)
            inputs = tuple(feats[:len(graph.input_names) - 1]) + (rois, )
            graph.structure = structure_of(graph.module._fn(*inputs))
            graphs.append(graph)
    return family, graphs


def example_rois(feats: Sequence[torch.Tensor], image_size: Tuple[int, int],
                 num_rois: int, generator: torch.Generator) -> torch.Tensor:
    """``(num_rois, 5)`` random RoIs inside the image, spread over the batch
    and over sizes (so every FPN level gets some)."""
    batch = feats[0].shape[0]
    height, width = image_size
    index = torch.arange(num_rois) % batch
    scale = torch.rand(num_rois, generator=generator) * 0.9 + 0.05
    w = scale * width
    h = scale * height * (0.5 + torch.rand(num_rois, generator=generator))
    x1 = torch.rand(num_rois, generator=generator) * (width - w).clamp(min=0)
    y1 = torch.rand(num_rois, generator=generator) * (height - h).clamp(
        min=0)
    return torch.stack([index.float(), x1, y1, x1 + w, (y1 + h).clamp(
        max=height)], dim=1)


def example_inputs(graph: GraphSpec, images: torch.Tensor,
                   feats: Optional[Sequence[torch.Tensor]],
                   num_rois: int, generator: torch.Generator
                   ) -> Tuple[torch.Tensor, ...]:
    """Inputs of ``graph`` for the image batch ``images``: the images, or
    (their features, random RoIs)."""
    if graph.name == IMAGE_GRAPH:
        return (images, )
    rois = example_rois(feats, tuple(images.shape[2:]), num_rois, generator)
    return tuple(feats[:len(graph.input_names) - 1]) + (rois, )
