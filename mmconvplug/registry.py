"""The registries mmconvplug registers into, and the conv-variant query.

Everything goes into mmengine's *root* registries: mmdet's and mmseg's
registries are children of these, so a type registered here is found from
the ``mmdet`` scope, the ``mmseg`` scope and scope-less code alike (a child
registry falls back to its parent when a name is not its own).

:func:`is_conv_variant` answers "is this module a conv variant?" for code
on a layer above the registries but below the conv variants themselves
(:mod:`mmconvplug.compat`'s optimizer-constructor extension). The package
(``mmconvplug/__init__.py``) fills it in with the contract's own query
(:func:`mmconvplug.convs.base.is_conv_variant`) right after importing the
conv variants, through :func:`set_conv_variant_query`; nothing below
``convs/`` imports the contract.
"""
from typing import Any, Callable, Optional

from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS

#: The contract's ``is_conv_variant`` once the conv variants are imported.
_conv_variant_query: Optional[Callable[[Any], bool]] = None


def set_conv_variant_query(query: Callable[[Any], bool]) -> None:
    """Install the contract's ``is_conv_variant(module) -> bool``."""
    global _conv_variant_query
    _conv_variant_query = query


def is_conv_variant(module: Any) -> bool:
    """True for a conv variant (False while no variant is imported)."""
    return _conv_variant_query is not None and bool(
        _conv_variant_query(module))


__all__ = ['DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'TRANSFORMS']
