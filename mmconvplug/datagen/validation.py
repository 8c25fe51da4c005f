"""Argument checks shared by the tiny-dataset generators (clear ValueErrors)."""
from __future__ import annotations

from typing import Sequence

#: Smallest image side the generators accept: smaller images cannot hold
#: objects with a sane box after truncation and occlusion.
MIN_SIDE = 32


def check_generator_args(num_train: int, num_val: int, size: Sequence[int],
                         seed: int) -> None:
    """Raise ``ValueError`` naming the setting when a generator argument is
    unusable."""
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f'{name}={value!r} is not a usable image count: it must be a '
                f'positive integer (e.g. --{name.replace("_", "-")} 16).')
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool)
                       for s in size) or min(size) < MIN_SIDE):
        raise ValueError(
            f'size={size!r} is not a usable image size: it must be two '
            f'integers (width, height), each >= {MIN_SIDE} '
            f'(e.g. --size 128 128).')
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(
            f'seed={seed!r} is not a usable seed: it must be a non-negative '
            f'integer (e.g. --seed 0).')
