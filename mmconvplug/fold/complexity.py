"""Parameters, FLOPs and inference time of a model, before and after folding.

FLOPs come from mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (a jit
trace of the forward; one multiply-add counts as one FLOP, mmengine's
convention). mmengine ``BaseModel`` s are measured through their raw
``mode='tensor'`` forward, the part folding changes.
"""
import statistics
import time
from typing import Any, Optional

import torch
from torch import nn

from .verify import _is_base_model


class TensorModeForward(nn.Module):
    """``forward(inputs)`` that calls ``model(inputs, samples, mode='tensor')``.

    The tracer behind FlopAnalyzer passes tensors only; data samples (image
    geometry for two-stage detectors) are held here instead.
    """

    def __init__(self, model: nn.Module, data_samples: Optional[list] = None):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor) -> Any:
        if _is_base_model(self.model):
            return self.model(inputs, self.data_samples, mode='tensor')
        return self.model(inputs)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or frozen; buffers excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None) -> int:
    """FLOPs of one forward on ``inputs`` (mmengine FlopAnalyzer)."""
    from mmengine.analysis import FlopAnalyzer
    training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(TensorModeForward(model, data_samples),
                                (inputs, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        return int(analyzer.total())
    finally:
        model.train(training)


@torch.no_grad()
def time_forward(model: nn.Module,
                 inputs: torch.Tensor,
                 data_samples: Optional[list] = None,
                 iters: int = 3,
                 warmup: int = 1) -> float:
    """Median wall time (seconds) of one eval-mode forward on ``inputs``."""
    if iters < 1:
        raise ValueError(f'time_forward: iters must be >= 1, got {iters}.')
    forward = TensorModeForward(model, data_samples)
    training = model.training
    model.eval()
    try:
        times = []
        for step in range(warmup + iters):
            if inputs.is_cuda:
                torch.cuda.synchronize(inputs.device)
            start = time.perf_counter()
            forward(inputs)
            if inputs.is_cuda:
                torch.cuda.synchronize(inputs.device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        model.train(training)
