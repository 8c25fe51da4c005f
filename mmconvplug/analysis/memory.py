"""Peak memory of one call, above what was allocated before it.

* CPU: torch.profiler's memory timeline (``profile_memory=True``, exported
  with ``export_memory_timeline``): every tensor allocation and free; the
  peak of all live tensor bytes minus those alive at the first sample
  (parameters, inputs).
* CUDA: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``, minus ``memory_allocated`` before the call.
"""
import json
import os
import tempfile
import warnings
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def _cpu_peak_bytes(call: Callable[[], object]) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=True, with_stack=True) as prof:
        call()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Deprecated in favour of a CUDA-only API; still the CPU timeline.
        warnings.simplefilter('ignore', FutureWarning)
        path = os.path.join(tmp, 'memory_timeline.json')
        prof.export_memory_timeline(path, device='cpu')
        with open(path) as f:
            _, sizes = json.load(f)
    totals = [sum(sample) for sample in sizes] or [0]
    return max(totals) - totals[0]


def _cuda_peak_bytes(call: Callable[[], object]) -> int:
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def peak_memory_bytes(call: Callable[[], object], cuda: bool = False) -> int:
    """Peak bytes of tensors ``call()`` allocates, above those alive before.

    Args:
        call (Callable): The function to measure, without arguments.
        cuda (bool): Measure the current CUDA device instead of the CPU.
            Defaults to False.

    Returns:
        int: Bytes.
    """
    return _cuda_peak_bytes(call) if cuda else _cpu_peak_bytes(call)
