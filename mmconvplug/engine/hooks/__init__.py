"""Hooks registered in mmengine's root ``HOOKS``."""
from .checkpoint_guard_hook import CheckpointGuardHook
from .checkpoint_keys_hook import CheckpointKeysHook
from .fold_hook import FoldHook, FoldVerificationError

__all__ = ['FoldHook', 'FoldVerificationError', 'CheckpointGuardHook',
           'CheckpointKeysHook']
