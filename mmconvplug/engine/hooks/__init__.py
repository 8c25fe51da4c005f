"""Hooks registered in mmengine's root ``HOOKS``."""
from mmconvplug.utils.removed import removed_names

from .checkpoint_fit_hook import CheckpointFitHook
from .fold_hook import FoldHook, FoldHookOrderError, FoldVerificationError

__all__ = ['FoldHook', 'FoldHookOrderError', 'FoldVerificationError',
           'CheckpointFitHook']

__getattr__ = removed_names(__name__, {
    name: 'use mmconvplug.engine.hooks.CheckpointFitHook '
    "(type='CheckpointFitHook' in configs)"
    for name in ('CheckpointGuardHook', 'CheckpointKeysHook')
})
