"""Peak memory of one call, above what was allocated before it.

* CPU, ``'timeline'``: torch.profiler's memory timeline
  (``profile_memory=True``, exported with ``export_memory_timeline``): every
  tensor allocation and free; the peak of all live tensor bytes minus those
  alive at the first sample (parameters, inputs). Exact, but the profiler
  records stacks: slow and memory-hungry for a whole detector.
* CPU, ``'rss'`` (Linux): the process's resident-set peak. Free heap memory
  is returned to the system first (glibc ``malloc_trim``), the kernel's
  peak counter is reset (``/proc/self/clear_refs``), and the peak
  (``VmHWM``) after the call minus the resident size (``VmRSS``) before it
  is reported: page-granular, and it includes allocator overhead.
* CUDA: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``, minus ``memory_allocated`` before the call.
"""
import ctypes
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


def _proc_status_bytes(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f'/proc/self/status has no {key}')


def rss_peak_supported() -> bool:
    """True where the ``'rss'`` method works (Linux with glibc)."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        _proc_status_bytes('VmHWM')
    except (OSError, AttributeError):
        return False
    return True


def _rss_peak_bytes(call: Callable[[], object]) -> int:
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident size
    before = _proc_status_bytes('VmRSS')
    call()
    return _proc_status_bytes('VmHWM') - before


def peak_memory_bytes(call: Callable[[], object],
                      cuda: bool = False,
                      method: str = 'timeline') -> int:
    """Peak bytes ``call()`` allocates, above those alive before it.

    Args:
        call (Callable): The function to measure, without arguments.
        cuda (bool): Measure the current CUDA device instead of the CPU.
            Defaults to False.
        method (str): On the CPU, ``'timeline'`` (tensor bytes, from the
            profiler) or ``'rss'`` (resident-set peak, Linux). Defaults to
            ``'timeline'``.

    Returns:
        int: Bytes.

    Raises:
        ValueError: unknown ``method``, or ``'rss'`` where it is not
            supported.
    """
    if cuda:
        return _cuda_peak_bytes(call)
    if method == 'timeline':
        return _cpu_peak_bytes(call)
    if method == 'rss':
        if not rss_peak_supported():
            raise ValueError(
                "peak_memory_bytes(method='rss') needs Linux with glibc "
                "(/proc/self/clear_refs, malloc_trim); use method='timeline'.")
        return _rss_peak_bytes(call)
    raise ValueError(f"method must be 'timeline' or 'rss', got {method!r}.")
