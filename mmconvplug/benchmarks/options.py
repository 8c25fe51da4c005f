"""Command-line options every benchmark mode shares, and what they set up.

``--repeats``, ``--threads``, ``--cpu-time``, ``--device``, ``--json`` and
``--markdown``: :func:`add_measurement_options` declares them,
:func:`measurement_setup` checks them, sets the torch thread count and
returns the clock and device.
"""
import argparse
import time
from typing import Callable, Tuple

import torch


def add_measurement_options(parser: argparse.ArgumentParser,
                            repeats: int = 5) -> None:
    """Declare the shared options on ``parser``."""
    parser.add_argument('--repeats', type=int, default=repeats,
                        help=f'timed repeats per measurement (default '
                        f'{repeats})')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads (default 2)')
    parser.add_argument('--cpu-time', action='store_true',
                        help='time with the process CPU clock instead of '
                        'wall time: robust on a shared machine with '
                        '--threads 1 (with more threads it adds their '
                        'busy-waiting)')
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--json', metavar='OUT',
                        help='also write the results as JSON to OUT')
    parser.add_argument('--markdown', action='store_true',
                        help='print the table in Markdown (for the README)')


def measurement_setup(parser: argparse.ArgumentParser,
                      args: argparse.Namespace
                      ) -> Tuple[Callable[[], float], str]:
    """Check the shared options, set torch's threads; ``(clock, device)``.

    A bad value exits through ``parser.error`` with the option's name.
    """
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}.')
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}.')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {device}: CUDA is not available here.')
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    return clock, device
