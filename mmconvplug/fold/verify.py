"""``verify_fold``: how far a folded model's outputs are from the original's.

For an mmengine ``BaseModel`` (mmdet detector, mmseg segmentor) we compare
the backbone/neck features (``extract_feat``) and the head outputs of
``model(inputs, data_samples, mode='tensor')``; for any other module, the
outputs of ``model(inputs)``. Nested tuples / lists / dicts of tensors are
flattened in order and compared one by one.

The relative error of one output is ``max|a - b| / max|a|`` (the error in
units of the output's own scale, robust to near-zero entries); an output
whose scale is below :data:`MIN_SCALE` (e.g. an all-zero ReLU map of a
random model) is measured against ``MIN_SCALE`` instead of dividing by ~0.
The reported figures are the maxima over all outputs.
"""
import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Tuple

import torch
from torch import nn


#: Floor of the scale a relative error is measured against.
MIN_SCALE = 1e-6


@dataclass
class FoldVerification:
    """Errors between the outputs of an original and a folded model."""

    max_abs_error: float
    max_rel_error: float
    num_outputs: int
    per_output: List[Tuple[str, float, float]] = field(default_factory=list)

    def within(self, tolerance: float) -> bool:
        """True when the relative error is at most ``tolerance``."""
        return self.max_rel_error <= tolerance

    def __str__(self) -> str:
        return (f'fold verification: max abs error {self.max_abs_error:.3g}, '
                f'max relative error {self.max_rel_error:.3g} over '
                f'{self.num_outputs} output tensor(s)')


def flatten_tensors(value: Any, prefix: str = 'out') -> List[Tuple[str, torch.Tensor]]:
    """``[(path, tensor), ...]`` for every tensor in a nested structure."""
    if isinstance(value, torch.Tensor):
        return [(prefix, value)]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    flat = []
    for key, item in items:
        flat.extend(flatten_tensors(item, f'{prefix}.{key}'))
    return flat


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put models in eval mode, restoring each one's mode on exit."""
    modes = [model.training for model in models]
    try:
        for model in models:
            model.eval()
        yield
    finally:
        for model, mode in zip(models, modes):
            model.train(mode)


def _is_base_model(model: nn.Module) -> bool:
    from mmengine.model import BaseModel
    return isinstance(model, BaseModel)


def default_data_samples(model: nn.Module, inputs: torch.Tensor) -> Optional[list]:
    """Minimal data samples (image geometry only) for ``mode='tensor'``.

    Two-stage detectors need ``img_shape`` / ``batch_input_shape`` to run the
    RPN inside their tensor-mode forward; segmentors and single-stage
    detectors accept ``None``.
    """
    from mmdet.models.detectors import BaseDetector
    from mmdet.structures import DetDataSample
    if not isinstance(model, BaseDetector):
        return None
    height, width = inputs.shape[-2:]
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), batch_input_shape=(height, width),
                scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta) for _ in range(inputs.shape[0])]


def prepare_inputs(model: nn.Module, inputs: Any,
                   data_samples: Optional[list] = None) -> Tuple[Any, Optional[list]]:
    """Turn a dataloader batch (a dict) into ``(tensor, data_samples)``.

    A batch goes through ``model.data_preprocessor`` (test-time, no
    augmentation); a tensor is used as it is.
    """
    if isinstance(inputs, dict):
        data = model.data_preprocessor(inputs, False)
        return data['inputs'], data.get('data_samples', data_samples)
    if isinstance(inputs, torch.Tensor) and _is_base_model(model):
        if data_samples is None:
            data_samples = default_data_samples(model, inputs)
    return inputs, data_samples


def model_outputs(model: nn.Module, inputs: Any,
                  data_samples: Optional[list] = None) -> List[Tuple[str, torch.Tensor]]:
    """Flattened features and raw head outputs of ``model`` on ``inputs``."""
    if not _is_base_model(model):
        return flatten_tensors(model(inputs))
    outputs = []
    if hasattr(model, 'extract_feat'):
        outputs += flatten_tensors(model.extract_feat(inputs), 'features')
    outputs += flatten_tensors(
        model(inputs, data_samples, mode='tensor'), 'head')
    return outputs


@torch.no_grad()
def verify_fold(original: nn.Module,
                folded: nn.Module,
                inputs: Any,
                data_samples: Optional[list] = None) -> FoldVerification:
    """Compare ``original`` and ``folded`` on the same inputs, in eval mode.

    Args:
        original: the model as trained.
        folded: the result of :func:`fold_model` on it.
        inputs: a tensor ``(N, C, H, W)`` or a dataloader batch dict
            (``{'inputs': [...], 'data_samples': [...]}``), which the
            original's ``data_preprocessor`` turns into a tensor once for
            both models.
        data_samples: optional data samples for ``mode='tensor'``.

    Returns:
        A :class:`FoldVerification` with max absolute and relative errors.
    """
    tensor, samples = prepare_inputs(original, inputs, data_samples)
    with eval_mode(original, folded):
        reference = model_outputs(original, tensor, samples)
        candidate = model_outputs(folded, tensor, samples)
    if len(reference) != len(candidate):
        raise ValueError(
            f'verify_fold: the original model gives {len(reference)} output '
            f'tensors but the folded one {len(candidate)}; folding must not '
            'change the model structure. Pass the model returned by '
            'fold_model for the same original.')
    per_output = []
    for (name, ref), (_, out) in zip(reference, candidate):
        if ref.shape != out.shape:
            raise ValueError(
                f'verify_fold: output {name} has shape {tuple(ref.shape)} in '
                f'the original model but {tuple(out.shape)} in the folded '
                'one; compare a model with its own fold.')
        ref, out = ref.detach().double(), out.detach().double()
        abs_error = (ref - out).abs().max().item() if ref.numel() else 0.0
        scale = ref.abs().max().item() if ref.numel() else 0.0
        rel_error = abs_error / max(scale, MIN_SCALE)
        per_output.append((name, abs_error, rel_error))
    return FoldVerification(
        max_abs_error=max((e[1] for e in per_output), default=0.0),
        max_rel_error=max((e[2] for e in per_output), default=0.0),
        num_outputs=len(per_output),
        per_output=per_output)
