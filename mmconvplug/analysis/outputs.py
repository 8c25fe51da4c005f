"""How far two models' outputs are apart.

For an mmengine ``BaseModel`` (mmdet detector, mmseg segmentor) the compared
outputs are the backbone/neck features (``extract_feat``) and the raw head
outputs of ``model(inputs, data_samples, mode='tensor')``; for any other
module, the outputs of ``model(inputs)``. Nested tuples / lists / dicts of
tensors are flattened in order and compared one by one.

The relative error of one output is ``max|a - b| / max|a|`` (the error in
units of the output's own scale, robust to near-zero entries); an output
whose scale is below :data:`MIN_SCALE` (e.g. an all-zero ReLU map of a
random model) is measured against ``MIN_SCALE`` instead of dividing by ~0.
The reported figures are the maxima over all outputs.
"""
import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

#: Floor of the scale a relative error is measured against.
MIN_SCALE = 1e-6

NamedTensors = List[Tuple[str, torch.Tensor]]


@dataclass
class OutputDifference:
    """Errors between the outputs of a reference and a candidate model.

    Args:
        max_abs_error (float): Largest ``max|a - b|`` over the outputs.
        max_rel_error (float): Largest ``max|a - b| / max|a|``.
        num_outputs (int): Number of compared output tensors.
        per_output (list[tuple[str, float, float]]): ``(name, abs, rel)``
            per output tensor.
    """

    max_abs_error: float
    max_rel_error: float
    num_outputs: int
    per_output: List[Tuple[str, float, float]] = field(default_factory=list)

    def within(self, tolerance: float) -> bool:
        """True when the relative error is at most ``tolerance``."""
        return self.max_rel_error <= tolerance

    def worst(self) -> Optional[Tuple[str, float, float]]:
        """The ``(name, abs, rel)`` entry with the largest relative error."""
        return max(self.per_output, key=lambda item: item[2], default=None)

    def __str__(self) -> str:
        return (f'max abs error {self.max_abs_error:.3g}, max relative '
                f'error {self.max_rel_error:.3g} over {self.num_outputs} '
                'output tensor(s)')


def flatten_tensors(value: Any, prefix: str = 'out') -> NamedTensors:
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


def is_base_model(model: nn.Module) -> bool:
    """True for an mmengine ``BaseModel`` (detector, segmentor, ...)."""
    from mmengine.model import BaseModel
    return isinstance(model, BaseModel)


def default_data_samples(model: nn.Module,
                         inputs: torch.Tensor) -> Optional[list]:
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
                   data_samples: Optional[list] = None
                   ) -> Tuple[Any, Optional[list]]:
    """Turn a dataloader batch (a dict) into ``(tensor, data_samples)``.

    A batch goes through ``model.data_preprocessor`` (test-time, no
    augmentation); a tensor is used as it is.
    """
    if isinstance(inputs, dict):
        data = model.data_preprocessor(inputs, False)
        return data['inputs'], data.get('data_samples', data_samples)
    if isinstance(inputs, torch.Tensor) and is_base_model(model):
        if data_samples is None:
            data_samples = default_data_samples(model, inputs)
    return inputs, data_samples


def model_outputs(model: nn.Module, inputs: Any,
                  data_samples: Optional[list] = None) -> NamedTensors:
    """Flattened features and raw head outputs of ``model`` on ``inputs``."""
    if not is_base_model(model):
        return flatten_tensors(model(inputs))
    outputs = []
    if hasattr(model, 'extract_feat'):
        outputs += flatten_tensors(model.extract_feat(inputs), 'features')
    outputs += flatten_tensors(
        model(inputs, data_samples, mode='tensor'), 'head')
    return outputs


def compare_outputs(reference: NamedTensors,
                    candidate: Sequence[Tuple[str, torch.Tensor]],
                    caller: str = 'compare_outputs') -> OutputDifference:
    """Errors of ``candidate`` against ``reference``, output by output.

    Raises:
        ValueError: the two lists differ in length or in a tensor's shape
            (not the same model structure).
    """
    if len(reference) != len(candidate):
        raise ValueError(
            f'{caller}: the reference model gives {len(reference)} output '
            f'tensors but the candidate {len(candidate)}; compare models of '
            'the same structure (a model with its own fold).')
    per_output = []
    for (name, ref), (_, out) in zip(reference, candidate):
        if ref.shape != out.shape:
            raise ValueError(
                f'{caller}: output {name} has shape {tuple(ref.shape)} in '
                f'the reference model but {tuple(out.shape)} in the '
                'candidate; compare a model with its own fold.')
        ref, out = ref.detach().double(), out.detach().double()
        abs_error = (ref - out).abs().max().item() if ref.numel() else 0.0
        scale = ref.abs().max().item() if ref.numel() else 0.0
        per_output.append((name, abs_error, abs_error / max(scale,
                                                            MIN_SCALE)))
    return OutputDifference(
        max_abs_error=max((e[1] for e in per_output), default=0.0),
        max_rel_error=max((e[2] for e in per_output), default=0.0),
        num_outputs=len(per_output),
        per_output=per_output)


@torch.no_grad()
def output_difference(reference: nn.Module,
                      candidate: nn.Module,
                      inputs: Any,
                      data_samples: Optional[list] = None,
                      caller: str = 'output_difference') -> OutputDifference:
    """Compare two models on the same inputs, both in eval mode.

    Args:
        reference (nn.Module): The model taken as right.
        candidate (nn.Module): The model measured against it.
        inputs (torch.Tensor | dict): A tensor ``(N, C, H, W)`` or a
            dataloader batch dict (``{'inputs': [...], 'data_samples':
            [...]}``), which the reference's ``data_preprocessor`` turns
            into a tensor once for both models.
        data_samples (list, optional): Data samples for ``mode='tensor'``.
            Defaults to None.
        caller (str): Name used in error messages. Defaults to
            ``'output_difference'``.

    Returns:
        OutputDifference: Max absolute and relative errors.
    """
    tensor, samples = prepare_inputs(reference, inputs, data_samples)
    with eval_mode(reference, candidate):
        ref = model_outputs(reference, tensor, samples)
        out = model_outputs(candidate, tensor, samples)
    return compare_outputs(ref, out, caller)
