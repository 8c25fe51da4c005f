"""``init_cfg=dict(type='Pretrained', ...)`` that never loads half silently.

mmengine's ``PretrainedInit`` loads its checkpoint with ``strict=False``:
whatever does not match keeps its random init, with a warning that also
lists every tensor that is *meant* to be missing (an ImageNet ``fc``, a
conv variant's own new tensors), so the real problems drown.
:class:`CheckedPretrainedInit` loads exactly as mmengine does (same
checkpoint loaders, ``prefix``, ``map_location``, ``module.`` key revision,
non-strict load), but first checks the keys with
:func:`~mmconvplug.engine.checkpoint_fit.check_checkpoint_keys`: tensors
left unfilled (other than variants' new tensors) or unused (other than an
ImageNet classifier) are reported by name, once, with the likely cause;
with ``strict=True`` the run stops there, before anything is loaded. The
paper configs keep the stock ``type='Pretrained'`` and get ``strict=True``
from their ``CheckpointFitHook(strict=True)``.

It replaces mmengine's ``'Pretrained'`` in the root ``WEIGHT_INITIALIZERS``
(so every mmdet/mmseg config's ``Pretrained`` init uses it): an import-time
change of upstream behaviour, :data:`CHANGE`, installed by
:mod:`mmconvplug.engine` and listed by ``mmconvplug info``.
"""
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from mmconvplug.compat import UpstreamChange

from .checkpoint_fit import check_checkpoint_keys, checkpoint_state_dict


class CheckedPretrainedInit(PretrainedInit):
    """mmengine's ``PretrainedInit`` with a key check before loading.

    Args:
        checkpoint (str): Path or URL of the checkpoint (any scheme
            mmengine's ``CheckpointLoader`` knows: a local path,
            ``torchvision://``, ``open-mmlab://``, ``https://``).
        prefix (str, optional): Load only the keys under this prefix
            (e.g. ``'backbone.'`` of a whole detector), with the prefix
            removed. Defaults to None.
        map_location (str): As ``torch.load``. Defaults to ``'cpu'``.
        strict (bool): Stop, naming the tensors and the likely cause,
            instead of warning, before anything is loaded. Defaults to
            False (``CheckpointFitHook(strict=True)`` sets it on the
            model's inits).
    """

    def __init__(self, checkpoint: str, prefix=None, map_location='cpu',
                 strict: bool = False) -> None:
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        self.strict = bool(strict)

    def __call__(self, module: nn.Module) -> None:
        from mmengine.runner.checkpoint import (
            _load_checkpoint,
            _load_checkpoint_with_prefix,
            load_state_dict,
        )
        print_log(f'load model from: {self.checkpoint}', logger='current')
        if self.prefix is None:
            checkpoint = _load_checkpoint(self.checkpoint,
                                          map_location=self.map_location,
                                          logger='current')
        else:
            print_log(f'load {self.prefix} in model from: {self.checkpoint}',
                      logger='current')
            checkpoint = _load_checkpoint_with_prefix(
                self.prefix, self.checkpoint, map_location=self.map_location)
        source = self.checkpoint if self.prefix is None else (
            f"{self.checkpoint} (keys under '{self.prefix}')")
        check_checkpoint_keys(module, checkpoint, source=source,
                              strict=self.strict)
        # Reported above; mmengine's own message would repeat it with the
        # expected differences mixed in.
        load_state_dict(module, checkpoint_state_dict(checkpoint),
                        strict=False, logger='silent')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())


def register_checked_pretrained_init() -> None:
    """Make ``'Pretrained'`` in the root ``WEIGHT_INITIALIZERS`` this class
    (idempotent)."""
    WEIGHT_INITIALIZERS.register_module(
        name='Pretrained', module=CheckedPretrainedInit, force=True)


#: The import-time change this module makes (see :mod:`mmconvplug.compat`).
CHANGE = UpstreamChange(
    kind='replacement',
    name='pretrained_key_check',
    package='mmengine',
    versions='>=0.7.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/blob/v0.10.7/mmengine/'
    'model/weight_init.py',
    summary="init_cfg=dict(type='Pretrained') names every tensor a load "
    "leaves unfilled or unused (strict=True: refuses it) instead of "
    "mmengine's silent non-strict load: 'Pretrained' in the root "
    'WEIGHT_INITIALIZERS is replaced (force=True) by CheckedPretrainedInit',
    apply=register_checked_pretrained_init)
