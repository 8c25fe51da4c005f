"""Let SyncBN configs train with CPU distributed data parallel (gloo).

Upstream: mmengine >=0.7.0,<=0.10.7 (the newest release checked), any torch
up to at least 2.13. ``Runner.wrap_model`` reverts SyncBN to BatchNorm
(``mmengine.model.revert_sync_batchnorm``) only when the run is *not*
distributed, and torch has no CPU SyncBatchNorm: ``DistributedDataParallel``
refuses a CPU module holding one with ``ValueError: SyncBatchNorm layers only
work with GPU modules`` (``torch/nn/parallel/distributed.py``,
``_passing_sync_batchnorm_handle``; a CPU kernel was proposed in
pytorch/pytorch#78078 and not merged). So ``tools/dist_train.sh CFG 2
--cfg-options env_cfg.dist_cfg.backend=gloo`` stops for every stock
DeepLabv3+/FCN config (``norm_cfg=dict(type='SyncBN')``) on a CPU-only
machine.

The fix wraps ``Runner.wrap_model``: when the run is distributed, the model
sits on the CPU and it holds SyncBN layers, they are reverted to BatchNorm
as mmengine does outside DDP, and a warning says so. Each process then
normalises with its own batch's statistics (as plain BN under DDP does);
on GPUs nothing changes and SyncBN synchronises as usual. Outside the
version range the module installs nothing.
"""
import functools
import logging

from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import Runner
from torch import nn

from .upstream import UpstreamChange


def _sync_bn_layers(model: nn.Module) -> int:
    sync_types = [nn.SyncBatchNorm]
    try:
        from mmcv.ops import SyncBatchNorm as MMSyncBN
        sync_types.append(MMSyncBN)
    except ImportError:
        pass
    return sum(isinstance(m, tuple(sync_types)) for m in model.modules())


def _on_cpu(model: nn.Module) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return bool(tensors) and all(t.device.type == 'cpu' for t in tensors)


def revert_sync_batchnorm_on_cpu(model: nn.Module, distributed: bool,
                                 logger=None) -> nn.Module:
    """``model`` with SyncBN reverted to BN when distributed on the CPU.

    Args:
        model (nn.Module): the model about to be wrapped (moved to its
            device already).
        distributed (bool): whether the run is distributed.
        logger: where the warning goes. Defaults to the current logger.

    Returns:
        nn.Module: ``model`` itself (its SyncBN children replaced), or
        unchanged when not distributed, on an accelerator, or without SyncBN.
    """
    if not distributed or not _on_cpu(model):
        return model
    count = _sync_bn_layers(model)
    if not count:
        return model
    print_log(
        f'{count} SyncBN layers reverted to BatchNorm: distributed training '
        'on CPU (gloo) has no SyncBatchNorm (torch runs it on GPUs only). '
        'Each process normalises with its own batch statistics; train on '
        'GPUs for synchronised BN, or set norm_cfg=dict(type="BN") (or "GN") '
        'to silence this.',
        logger=logger or 'current', level=logging.WARNING)
    return revert_sync_batchnorm(model)


def patch_cpu_sync_batchnorm() -> None:
    """Install the fix once (idempotent)."""
    original = Runner.wrap_model
    if getattr(original, '_mmconvplug_patched', False):
        return

    @functools.wraps(original)
    def wrap_model(self, model_wrapper_cfg, model):
        from mmengine.device import get_device
        from mmengine.model import is_model_wrapper
        if self.distributed and not is_model_wrapper(model):
            model = revert_sync_batchnorm_on_cpu(
                model.to(get_device()), True, self.logger)
        return original(self, model_wrapper_cfg, model)

    wrap_model._mmconvplug_patched = True
    Runner.wrap_model = wrap_model


FIX = UpstreamChange(
    name='cpu_sync_batchnorm',
    package='mmengine',
    versions='>=0.7.0,<=0.10.7',
    issue='https://github.com/pytorch/pytorch/pull/78078',
    summary='a SyncBN config under CPU DDP (gloo) stops with "SyncBatchNorm '
    'layers only work with GPU modules"; mmengine reverts SyncBN only '
    'outside DDP',
    apply=patch_cpu_sync_batchnorm)
