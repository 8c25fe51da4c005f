"""``init_cfg=dict(type='Pretrained', ...)`` that never loads half silently.

mmengine's ``PretrainedInit`` loads its checkpoint with ``strict=False``:
whatever does not match keeps its random init, with a warning that also
lists every tensor that is *meant* to be missing (an ImageNet ``fc``, a
conv variant's own new tensors), so the real problems drown. Importing
mmconvplug registers :class:`CheckedPretrainedInit` under the same name
``'Pretrained'`` (in mmengine's root ``WEIGHT_INITIALIZERS``, so every
mmdet/mmseg config's ``Pretrained`` init uses it). It loads exactly as
mmengine does (same checkpoint loaders, ``prefix``, ``map_location``,
``module.`` key revision, non-strict load), but first checks the keys with
:func:`~mmconvplug.engine.checkpoint_keys.check_checkpoint_keys`: tensors
left unfilled (other than variants' new tensors) or unused (other than an
ImageNet classifier) are reported by name, once, with the likely cause; in
strict mode (``CheckpointKeysHook(strict=True)``, set by the paper configs)
the run stops there, before anything is loaded.
"""
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from .checkpoint_keys import check_checkpoint_keys, checkpoint_state_dict


@WEIGHT_INITIALIZERS.register_module(name='Pretrained', force=True)
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
    """

    def __call__(self, module: nn.Module) -> None:
        from mmengine.runner.checkpoint import (_load_checkpoint,
                                                _load_checkpoint_with_prefix,
                                                load_state_dict)
        print_log(f'load model from: {self.checkpoint}', logger='current')
        if self.prefix is None:
            checkpoint = _load_checkpoint(self.checkpoint,
                                          map_location=self.map_location,
                                          logger='current')
            state_dict = checkpoint_state_dict(checkpoint)
        else:
            print_log(f'load {self.prefix} in model from: {self.checkpoint}',
                      logger='current')
            state_dict = _load_checkpoint_with_prefix(
                self.prefix, self.checkpoint, map_location=self.map_location)
        source = self.checkpoint if self.prefix is None else (
            f"{self.checkpoint} (keys under '{self.prefix}')")
        check_checkpoint_keys(module, state_dict, source=source)
        # Reported above; mmengine's own message would repeat it with the
        # expected differences mixed in.
        load_state_dict(module, state_dict, strict=False, logger='silent')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())
