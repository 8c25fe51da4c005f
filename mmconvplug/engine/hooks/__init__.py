"""Hooks registered in mmengine's root ``HOOKS``."""
from .checkpoint_guard_hook import CheckpointGuardHook
from .checkpoint_keys_hook import CheckpointKeysHook
from .fold_hook import FoldHook, FoldHookOrderError, FoldVerificationError

__all__ = ['FoldHook', 'FoldHookOrderError', 'FoldVerificationError',
           'CheckpointGuardHook', 'CheckpointKeysHook']
