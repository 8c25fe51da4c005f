"""Module-name patterns of ``conv_swap``: which convs a block reaches.

Patterns are Unix shell-style wildcards (:func:`fnmatch.fnmatchcase`:
``*`` any text, dots included; ``?`` one character; ``[3-4]`` one of a set)
matched against the names of ``model.named_modules()``, e.g.
``backbone.layer[3-4]``, ``rpn_head``, ``roi_head.*``,
``decode_head.aspp_modules.*.depthwise_conv``. A pattern that names a module
reaches every conv inside it. A pattern that names no module is an error
listing the closest module names (:mod:`difflib`).
"""
import difflib
from fnmatch import fnmatchcase
from typing import Dict, Iterable, List, Optional, Sequence

from .spec import ConvSwapConfigError


def _ancestry(name: str) -> List[str]:
    """``'a.b.c'`` -> ``['a.b.c', 'a.b', 'a']`` (the module, then its
    parents)."""
    parts = name.split('.')
    return ['.'.join(parts[:end]) for end in range(len(parts), 0, -1)]


def first_match(name: str, patterns: Sequence[str]) -> Optional[str]:
    """The first pattern matching ``name`` or one of its parents, if any."""
    if not name:
        return None
    for candidate in _ancestry(name):
        for pattern in patterns:
            if fnmatchcase(candidate, pattern):
                return pattern
    return None


def closest_names(pattern: str, names: Iterable[str], n: int = 5) -> List[str]:
    """Up to ``n`` module names closest to ``pattern`` (difflib ratio).

    Top-level names come first when nothing is close, so the message always
    shows where to start.
    """
    names = [name for name in names if name]
    close = difflib.get_close_matches(pattern, names, n=n, cutoff=0.5)
    if not close:
        # Compare with the names at the pattern's depth, then the top level.
        depth = pattern.count('.')
        same_depth = [name for name in names if name.count('.') == depth]
        close = difflib.get_close_matches(
            pattern, same_depth, n=n, cutoff=0.0)
    return close


def check_patterns_match(patterns: Dict[str, Sequence[str]],
                         module_names: Sequence[str],
                         owner: str) -> None:
    """Raise if a pattern matches no module name.

    Args:
        patterns (dict): ``{'include': [...], 'exclude': [...]}``.
        module_names (Sequence[str]): ``named_modules()`` names (root
            excluded).
        owner (str): The model's class name, for the message.

    Raises:
        ConvSwapConfigError: names the pattern and the closest module
            names.
    """
    for key, values in patterns.items():
        for pattern in values:
            if any(fnmatchcase(name, pattern) for name in module_names):
                continue
            close = closest_names(pattern, module_names)
            raise ConvSwapConfigError(
                f'conv_swap.{key} pattern {pattern!r} matches no module of '
                f'{owner}. Closest module names: '
                f'{", ".join(repr(c) for c in close) or "(none)"}. Patterns '
                'are fnmatch wildcards over model.named_modules() names '
                "(e.g. 'backbone.layer[3-4]', 'roi_head.*'); `python -m "
                'mmconvplug swap CONFIG --list` lists the convs.')
