"""A detector or segmentor whose learned computation runs in exported graphs.

:func:`attach_graphs` takes a model built from the config and makes its
stock ``predict`` call the ONNX graphs (:mod:`.graphs`) wherever the
learned layers would run: ``extract_feat`` runs the image graph, the dense
head's (or decode head's) ``forward`` returns the graph's raw outputs, and
a two-stage RoI head's ``_bbox_forward`` / ``_mask_forward`` /
``_keypoint_forward`` run the RoI graphs. Everything else is mmdet's and
mmseg's own code, unchanged: anchor decoding, NMS, proposal selection, mask
pasting, keypoint decoding, resizing, rescaling to the original image. The
model then runs in the stock test loop and evaluator.

Every parameter and floating-point buffer of the host model (except its
data preprocessor's) is set to NaN, so a learned layer that still ran in
PyTorch would show as NaN outputs, never as a plausible metric.
"""
import math
from typing import Any, Dict

import torch
from torch import nn

from .graphs import IMAGE_GRAPH, TWO_STAGE, unflatten
from .runtimes import InferenceSession


def _numpy(tensor: torch.Tensor):
    return tensor.detach().to('cpu', torch.float32).contiguous().numpy()


class _Graph:
    """A session and the nesting of its outputs."""

    def __init__(self, session: InferenceSession, structure: Any) -> None:
        self.session = session
        self.structure = structure

    def __call__(self, *tensors: torch.Tensor) -> Any:
        device = tensors[0].device
        outputs = self.session(*[_numpy(t) for t in tensors])
        return unflatten(self.structure,
                         [torch.from_numpy(o).to(device) for o in outputs])


class _HeadOutputs:
    """What ``extract_feat`` hands the head: the image graph's raw head
    outputs (the features stay inside the graph)."""

    def __init__(self, outputs: Any) -> None:
        self.outputs = outputs


class _Features(tuple):
    """Multi-level features of a two-stage image graph, carrying the RPN's
    raw outputs for ``rpn_head.forward``."""

    rpn_outputs: Any = None


def poison_learned_tensors(model: nn.Module) -> None:
    """Set every parameter and floating-point buffer of ``model`` to NaN,
    except the data preprocessor's (its mean / std are pre-processing)."""
    keep = getattr(model, 'data_preprocessor', None)
    kept = set() if keep is None else {
        id(t) for t in list(keep.parameters()) + list(keep.buffers())}
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point() and id(tensor) not in kept:
                tensor.fill_(math.nan)


def _head_forward(x: Any) -> Any:
    if not isinstance(x, _HeadOutputs):
        raise RuntimeError(
            'The exported head was called on something other than the '
            "image graph's outputs: this model's predict path is not the "
            'one the export knows.')
    return x.outputs


def _attach_one_graph(model: nn.Module, head: nn.Module,
                      graph: _Graph) -> None:
    model.extract_feat = lambda inputs: _HeadOutputs(graph(inputs))
    head.forward = _head_forward


def _attach_two_stage(model: nn.Module, graphs: Dict[str, _Graph]) -> None:
    image = graphs[IMAGE_GRAPH]

    def extract_feat(inputs):
        feats, rpn_outputs = image(inputs)
        features = _Features(feats)
        features.rpn_outputs = rpn_outputs
        return features

    def rpn_forward(x):
        if not isinstance(x, _Features):
            raise RuntimeError('rpn_head.forward got features that did not '
                               'come from the image graph.')
        return x.rpn_outputs

    model.extract_feat = extract_feat
    model.rpn_head.forward = rpn_forward
    roi_head = model.roi_head

    def run(name, x, rois):
        num_levels = len(graphs[name].session.input_names) - 1
        return graphs[name](*x[:num_levels], rois)

    if 'roi_bbox' in graphs:

        def bbox_forward(x, rois):
            cls_score, bbox_pred = run('roi_bbox', x, rois)
            return dict(cls_score=cls_score, bbox_pred=bbox_pred,
                        bbox_feats=None)

        roi_head._bbox_forward = bbox_forward
    if 'roi_mask' in graphs:

        def mask_forward(x, rois=None, pos_inds=None, bbox_feats=None):
            return dict(mask_preds=run('roi_mask', x, rois), mask_feats=None)

        roi_head._mask_forward = mask_forward
    if 'roi_keypoint' in graphs:
        roi_head._keypoint_forward = \
            lambda x, rois: run('roi_keypoint', x, rois)


def attach_graphs(model: nn.Module, family: str,
                  sessions: Dict[str, InferenceSession],
                  structures: Dict[str, Any]) -> nn.Module:
    """Make ``model``'s stock ``predict`` run the exported graphs.

    Args:
        model (nn.Module): a model built from the exported model's config
            (its weights are not used: they are set to NaN).
        family (str): the family :func:`~.graphs.model_family` gave.
        sessions (dict[str, InferenceSession]): graph name -> loaded graph
            (:func:`~.runtimes.open_session`).
        structures (dict[str, Any]): graph name -> nesting of its outputs
            (the export's manifest).

    Returns:
        nn.Module: ``model`` (changed in place), in eval mode.

    Raises:
        ValueError: a graph the family needs is missing.
    """
    needed = [IMAGE_GRAPH]
    missing = [name for name in needed if name not in sessions]
    if missing:
        raise ValueError(f'No {", ".join(missing)} graph among the sessions '
                         f'({", ".join(sorted(sessions))}).')
    graphs = {name: _Graph(sessions[name], structures[name])
              for name in sessions}
    poison_learned_tensors(model)
    if family == TWO_STAGE:
        _attach_two_stage(model, graphs)
    else:
        head = model.bbox_head if hasattr(model, 'bbox_head') else \
            model.decode_head
        _attach_one_graph(model, head, graphs[IMAGE_GRAPH])
    return model.eval()
