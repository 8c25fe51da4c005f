"""Timing by medians of interleaved repeats.

Every repeat calls each measured function once, back to back, so slow drift
of a shared machine (other processes, thermal throttling) hits every column
alike; the reported figure is the median over repeats, and ratios of medians
from one run are what the benchmarks report. On CUDA a call is timed with
CUDA events (the GPU's own clock, no host synchronisation inside the
timed region); on the CPU with ``clock`` (``time.perf_counter``, or
``time.process_time`` for CPU time on a shared machine).
"""
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch


def time_call(call: Callable[[], object],
              clock: Callable[[], float] = time.perf_counter,
              cuda: bool = False) -> float:
    """Seconds one ``call()`` takes.

    Args:
        call (Callable): The function to time, without arguments.
        clock (Callable): CPU clock in seconds. Defaults to
            ``time.perf_counter``.
        cuda (bool): Time the GPU work with CUDA events (the current
            device), synchronising before and after. Defaults to False.

    Returns:
        float: Elapsed seconds.
    """
    if not cuda:
        start = clock()
        call()
        return clock() - start
    begin = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    begin.record()
    call()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1e3


def interleaved_medians(calls: Dict[str, Callable[[], object]],
                        repeats: int,
                        clock: Callable[[], float] = time.perf_counter,
                        warmup: int = 1,
                        cuda: bool = False,
                        before_each: Optional[Callable[[], None]] = None
                        ) -> Dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds.

    Args:
        calls (dict[str, Callable]): Name -> function without arguments.
        repeats (int): Timed rounds; each calls every function once.
        clock (Callable): CPU clock. Defaults to ``time.perf_counter``.
        warmup (int): Untimed calls of each function first. Defaults to 1.
        cuda (bool): Time with CUDA events. Defaults to False.
        before_each (Callable, optional): Called, untimed, before every
            call (e.g. to reseed the RNG so every model samples alike).
            Defaults to None.

    Returns:
        dict[str, float]: Name -> median seconds.

    Raises:
        ValueError: ``repeats < 1`` or ``warmup < 0``.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}.')
    if warmup < 0:
        raise ValueError(f'warmup must be >= 0, got {warmup}.')
    prepare = before_each or (lambda: None)
    for _ in range(warmup):
        for call in calls.values():
            prepare()
            call()
    samples: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            prepare()
            samples[name].append(time_call(call, clock, cuda))
    return {name: statistics.median(values)
            for name, values in samples.items()}
