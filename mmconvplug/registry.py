"""The registries mmconvplug registers into.

Everything goes into mmengine's *root* registries: mmdet's and mmseg's
registries are children of these, so a type registered here is found from
the ``mmdet`` scope, the ``mmseg`` scope and scope-less code alike (a child
registry falls back to its parent when a name is not its own).
"""
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS

__all__ = ['DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'TRANSFORMS']
