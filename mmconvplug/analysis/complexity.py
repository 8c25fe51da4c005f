"""Parameter counts and FLOPs of a model.

FLOPs come from mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (a jit
trace of the forward; one multiply-add counts as one FLOP, mmengine's
convention). mmengine ``BaseModel`` s are measured through their raw
``mode='tensor'`` forward (network only, no pre- or post-processing).
"""
from typing import Any, Optional

import torch
from torch import nn

from .outputs import eval_mode, is_base_model


class TensorModeForward(nn.Module):
    """``forward(inputs)`` that calls ``model(inputs, samples, mode='tensor')``.

    The tracer behind FlopAnalyzer passes tensors only; data samples (image
    geometry for two-stage detectors) are held here instead. Other modules
    are called as ``model(inputs)``.

    Args:
        model (nn.Module): The model.
        data_samples (list, optional): Data samples for ``mode='tensor'``.
            Defaults to None.
    """

    def __init__(self, model: nn.Module, data_samples: Optional[list] = None):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor) -> Any:
        if is_base_model(self.model):
            return self.model(inputs, self.data_samples, mode='tensor')
        return self.model(inputs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers excluded).

    Args:
        model (nn.Module): The model.
        trainable_only (bool): Count only those with ``requires_grad``.
            Defaults to False.

    Returns:
        int: The count.
    """
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model: nn.Module,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None) -> int:
    """FLOPs (multiply-adds) of one eval-mode forward on ``inputs``.

    Args:
        model (nn.Module): The model (its train/eval mode is restored).
        inputs (torch.Tensor): Input batch ``(N, C, H, W)``.
        data_samples (list, optional): Data samples for an mmengine
            ``BaseModel``'s ``mode='tensor'``. Defaults to None.

    Returns:
        int: FLOPs as counted by mmengine's ``FlopAnalyzer``.

    Raises:
        RuntimeError: the jit trace behind the analyzer failed.
    """
    from mmengine.analysis import FlopAnalyzer
    with eval_mode(model):
        analyzer = FlopAnalyzer(TensorModeForward(model, data_samples),
                                (inputs, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        return int(analyzer.total())
