"""``CheckpointFitHook``: a checkpoint that does not fit the model stops or
is reported, for ``load_from`` / ``resume`` and the ``Pretrained`` inits.

The Runner calls ``before_run``, then initialises the model's weights (the
``Pretrained`` init_cfgs, checked by
:class:`~mmconvplug.engine.pretrained_init.CheckedPretrainedInit`), then
loads ``load_from`` / ``resume``, calling ``after_load_checkpoint`` with the
checkpoint *before* it goes into the model. The hook

* in ``before_run``, with ``strict=True``, gives ``strict=True`` to every
  ``Pretrained`` init of the runner's model that does not set its own
  (:func:`~mmconvplug.engine.checkpoint_fit.strict_pretrained_inits`);
* in ``after_load_checkpoint``, checks the ``load_from`` / ``resume``
  checkpoint (:func:`~mmconvplug.engine.checkpoint_fit.
  check_checkpoint_fit`): a folded checkpoint for the training config (or
  the reverse) always stops the run with the fix; missing, unused or
  misshapen tensors are reported by name, and stop it when ``strict``.

``tools/train.py`` (with ``load_from`` / ``resume``) and ``tools/test.py``
add ``dict(type='CheckpointFitHook')`` unless the config has one. Paper
configs make it strict with one line (``default_hooks`` merges with the
base config's, so no base hook is dropped)::

    default_hooks = dict(
        checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
"""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmconvplug.registry import HOOKS
from mmconvplug.utils.removed import removed_type

from ..checkpoint_fit import (
    IMAGENET_CLASSIFIER_KEYS,
    check_checkpoint_fit,
    strict_pretrained_inits,
)


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuse, or report, checkpoints that do not fit the model.

    Args:
        strict (bool): Stop the run, naming the keys and the likely cause,
            instead of warning; also the default of the model's
            ``Pretrained`` inits. Defaults to False.
        ignore_unexpected (Sequence[str]): fnmatch patterns of checkpoint
            keys a ``load_from`` checkpoint may carry unused. Defaults to
            the ImageNet classifier keys (``fc.*``, ``classifier.*``).
    """

    priority = 'VERY_HIGH'

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
        """Hand ``strict=True`` to the model's ``Pretrained`` inits."""
        if self.strict:
            strict_pretrained_inits(self._model(runner), True)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check a ``load_from`` / ``resume`` checkpoint before it loads."""
        load_from = getattr(runner, '_load_from', None)
        check_checkpoint_fit(self._model(runner), checkpoint,
                             source=(f'load_from={load_from}' if load_from
                                     else 'the checkpoint being resumed'),
                             strict=self.strict,
                             ignore_unexpected=self.ignore_unexpected)


# The two hooks of 0.2.0 are this one now.
for _old in ('CheckpointGuardHook', 'CheckpointKeysHook'):
    HOOKS.register_module(
        name=_old,
        module=removed_type(
            _old, "use type='CheckpointFitHook' (one hook checks folded/"
            'unfolded mix-ups and the keys; strict=True makes key problems '
            "an error), e.g. default_hooks=dict(checkpoint_fit=dict("
            "type='CheckpointFitHook', strict=True))", Hook))
