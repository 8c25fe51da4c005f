"""``CheckpointGuardHook``: stop a folded/unfolded checkpoint mix-up at load time.

mmengine's ``Runner.load_checkpoint`` calls ``after_load_checkpoint`` with
the loaded dict *before* putting it into the model (non-strictly). This hook
checks it there with
:func:`mmconvplug.fold.check_checkpoint_matches_model` and raises
:class:`~mmconvplug.fold.FoldCheckpointMismatchError` naming the fix.
``tools/test.py`` adds it; add ``dict(type='CheckpointGuardHook')`` to
``custom_hooks`` of a config that uses ``load_from``.
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmconvplug.fold import check_checkpoint_matches_model
from mmconvplug.registry import HOOKS


@HOOKS.register_module()
class CheckpointGuardHook(Hook):
    """Refuse a checkpoint whose convs are folded where the model's are not."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        check_checkpoint_matches_model(model, checkpoint, source=str(source))
