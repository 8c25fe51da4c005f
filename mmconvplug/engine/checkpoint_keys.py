"""Removed after mmconvplug 0.2.0: see :mod:`mmconvplug.engine.checkpoint_fit`.

The key check and the fold mix-up check are one engine now,
:mod:`mmconvplug.engine.checkpoint_fit`, and strictness is an argument
instead of process state. Every name this module had raises
:class:`~mmconvplug.utils.removed.RemovedAPIError` naming its replacement.
"""
from mmconvplug.utils.removed import removed_names

_MOVED = 'import it from mmconvplug.engine.checkpoint_fit'
_STRICTNESS = (
    'strictness is an argument now, not process state: '
    "CheckpointFitHook(strict=True) in default_hooks (it also makes the "
    "model's Pretrained inits strict), init_cfg=dict(type='Pretrained', ..., "
    'strict=True), or check_checkpoint_keys(..., strict=True); for a built '
    'model, mmconvplug.engine.checkpoint_fit.strict_pretrained_inits(model)')

__getattr__ = removed_names(__name__, {
    **{name: _MOVED for name in (
        'IMAGENET_CLASSIFIER_KEYS', 'MAX_LISTED', 'IncompatibleKeysError',
        'IncompatibleKeys', 'group_keys', 'new_tensor_keys',
        'find_incompatible_keys', 'checkpoint_state_dict',
        'check_checkpoint_keys')},
    **{name: _STRICTNESS for name in (
        'strict_checkpoint_keys', 'set_strict_checkpoint_keys',
        'mark_strict_model', 'checkpoint_keys_strictness')},
})
