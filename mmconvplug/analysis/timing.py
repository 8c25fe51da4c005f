"""Timing by medians of interleaved repeats.

Every repeat calls each measured function once, back to back, so slow drift
of a shared machine (other processes, thermal throttling) hits every column
alike; the reported figure is the median over repeats with its
interquartile range (:func:`spread`; paired per-round ratios:
:func:`ratio_spread`), and ratios from one run are what the benchmarks
report. On CUDA a call is timed with CUDA events (the GPU's own clock, no
host synchronisation inside the timed region); on the CPU with ``clock``
(``time.perf_counter``, or ``time.process_time`` for CPU time on a shared
machine).
"""
import random
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Collection, Dict, List, Optional, Sequence

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


def interleaved_samples(calls: Dict[str, Callable[[], object]],
                        repeats: int,
                        clock: Callable[[], float] = time.perf_counter,
                        warmup: int = 1,
                        cuda: bool = False,
                        before_each: Optional[Callable[[], None]] = None,
                        warm: Collection[str] = ()
                        ) -> Dict[str, List[float]]:
    """Seconds of every call of each function, timed in interleaved rounds.

    Args:
        calls (dict[str, Callable]): Name -> function without arguments.
        repeats (int): Timed rounds; each calls every function once, in
            an order shuffled afresh each round (seeded, so a run repeats
            its orders): a call timed right after a different workload
            (cold caches, idle threads) is not always the same one, as it
            would be in any fixed or rotated order.
        clock (Callable): CPU clock. Defaults to ``time.perf_counter``.
        warmup (int): Untimed calls of each function first. Defaults to 1.
        cuda (bool): Time with CUDA events. Defaults to False.
        before_each (Callable, optional): Called, untimed, before every
            call (e.g. to reseed the RNG so every model samples alike).
            Defaults to None.
        warm (Collection[str]): Names whose every timed call comes right
            after an untimed call of the same function: timed warm (its own
            operands in cache) rather than after whichever workload the
            shuffle put before it. For short calls measured beside long
            ones (a kernel composition beside whole train steps). Defaults
            to none.

    Returns:
        dict[str, list[float]]: Name -> seconds, one per round (round
        ``i`` of every name comes from the same pass over ``calls``, so
        per-round ratios are paired).

    Raises:
        ValueError: ``repeats < 1``, ``warmup < 0`` or a ``warm`` name
            that is not in ``calls``.
    """
    unknown = sorted(set(warm) - set(calls))
    if unknown:
        raise ValueError(f'warm names {unknown} are not in calls.')
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
    order = list(calls.items())
    shuffler = random.Random(0)  # its own generator: the caller's RNG stays
    for _ in range(repeats):
        shuffler.shuffle(order)
        for name, call in order:
            if name in warm:
                prepare()
                call()
            prepare()
            samples[name].append(time_call(call, clock, cuda))
    return samples


def interleaved_medians(calls: Dict[str, Callable[[], object]],
                        repeats: int,
                        clock: Callable[[], float] = time.perf_counter,
                        warmup: int = 1,
                        cuda: bool = False,
                        before_each: Optional[Callable[[], None]] = None
                        ) -> Dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds
    (:func:`interleaved_samples`; the arguments are its arguments).

    Returns:
        dict[str, float]: Name -> median seconds.

    Raises:
        ValueError: ``repeats < 1`` or ``warmup < 0``.
    """
    samples = interleaved_samples(calls, repeats, clock, warmup, cuda,
                                  before_each)
    return {name: statistics.median(values)
            for name, values in samples.items()}


@dataclass(frozen=True)
class Spread:
    """A median with its interquartile range.

    Attributes:
        median (float): The median.
        q1 (float): The first quartile (25th percentile).
        q3 (float): The third quartile (75th percentile).
        count (int): How many values.
    """

    median: float
    q1: float
    q3: float
    count: int

    @property
    def iqr(self) -> float:
        """``q3 - q1``."""
        return self.q3 - self.q1

    def format(self, digits: int = 2) -> str:
        """``'median (IQR q1-q3)'``, e.g. ``'1.04 (1.01-1.06)'``."""
        return (f'{self.median:.{digits}f} '
                f'({self.q1:.{digits}f}-{self.q3:.{digits}f})')


def spread(values: Sequence[float]) -> Spread:
    """Median and quartiles of ``values`` (``statistics.quantiles``,
    inclusive method: one value gives ``q1 = median = q3``).

    Args:
        values (Sequence[float]): At least one value.

    Returns:
        Spread: the median and the interquartile range.

    Raises:
        ValueError: ``values`` is empty.

    Example:
        >>> spread([1.0, 2.0, 3.0, 4.0, 5.0])
        Spread(median=3.0, q1=2.0, q3=4.0, count=5)
    """
    values = list(values)
    if not values:
        raise ValueError('spread() needs at least one value.')
    if len(values) == 1:
        return Spread(values[0], values[0], values[0], 1)
    q1, median, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return Spread(median, q1, q3, len(values))


def ratio_spread(numerator: Sequence[float],
                 denominator: Sequence[float]) -> Spread:
    """The spread of per-round ratios of two paired sample lists (round
    ``i`` of one over round ``i`` of the other, as
    :func:`interleaved_samples` times them).

    Args:
        numerator (Sequence[float]): Seconds per round.
        denominator (Sequence[float]): Seconds per round, as many, > 0.

    Returns:
        Spread: of ``numerator[i] / denominator[i]``.

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(numerator) != len(denominator):
        raise ValueError(f'ratio_spread: {len(numerator)} rounds against '
                         f'{len(denominator)}; pass paired samples.')
    return spread([a / b for a, b in zip(numerator, denominator)])
