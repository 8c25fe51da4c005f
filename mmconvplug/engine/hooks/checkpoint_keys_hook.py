"""``CheckpointKeysHook``: the switch that makes a partial checkpoint load an
error, for the ``Pretrained`` init and for ``load_from`` / ``resume``.

The Runner calls ``before_run``, then initialises the model's weights (the
``Pretrained`` init_cfgs, checked by
:class:`~mmconvplug.engine.pretrained_init.CheckedPretrainedInit`), then
loads ``load_from`` / ``resume``, calling ``after_load_checkpoint`` with the
checkpoint *before* it goes into the model, then ``before_train``. The hook
makes the key checks strict from ``before_run`` until the weights are in
place (for this runner's model only), and checks the ``load_from`` /
``resume`` checkpoint itself.

Paper configs switch it on with one line (``default_hooks`` merges with the
base config's, so no base hook is dropped)::

    default_hooks = dict(
        checkpoint_keys=dict(type='CheckpointKeysHook', strict=True))
"""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmconvplug.registry import HOOKS

from ..checkpoint_keys import (IMAGENET_CLASSIFIER_KEYS, check_checkpoint_keys,
                               checkpoint_state_dict, mark_strict_model)


@HOOKS.register_module()
class CheckpointKeysHook(Hook):
    """Report, or refuse, checkpoints that do not fit the model.

    Args:
        strict (bool): Stop the run, naming the keys and the likely cause,
            instead of warning. Defaults to False.
        ignore_unexpected (Sequence[str]): fnmatch patterns of checkpoint
            keys a ``load_from`` checkpoint may carry unused. Defaults to
            the ImageNet classifier keys (``fc.*``, ``classifier.*``).
    """

    # After CheckpointGuardHook (VERY_HIGH), whose folded/unfolded message
    # names a more specific fix.
    priority = 'HIGH'

    def __init__(
            self,
            strict: bool = False,
            ignore_unexpected: Sequence[str] = IMAGENET_CLASSIFIER_KEYS
    ) -> None:
        self.strict = bool(strict)
        self.ignore_unexpected = tuple(ignore_unexpected)

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_run(self, runner) -> None:
        """Make the model's ``Pretrained`` inits (run next) strict."""
        if self.strict:
            mark_strict_model(self._model(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check a ``load_from`` / ``resume`` checkpoint before it loads."""
        load_from = getattr(runner, '_load_from', None)
        check_checkpoint_keys(self._model(runner),
                              checkpoint_state_dict(checkpoint),
                              source=(f'load_from={load_from}' if load_from
                                      else 'the checkpoint being resumed'),
                              strict=self.strict,
                              ignore_unexpected=self.ignore_unexpected)

    def before_train(self, runner) -> None:
        """The weights are in place: later inits are the user's business."""
        mark_strict_model(self._model(runner), False)

    def after_run(self, runner) -> None:
        mark_strict_model(self._model(runner), False)
