"""A test-only hook that records, per rank, what a distributed run did.

The 2-process tests add ``dict(type='RankProbeHook')`` to ``custom_hooks``
(with ``custom_imports`` of this module; ``tests/distributed`` is on
``PYTHONPATH``). mmengine writes the log of rank 0 only, so each rank writes
``probe_rank{rank}_{run}.json`` in the work dir at the end of the run:

* ``start_iter``: the iteration training starts from (after ``--resume``);
* ``saved``: checkpoints this rank wrote (``before_save_checkpoint`` runs
  inside ``Runner.save_checkpoint``, which is master-only);
* ``val_samples``: validation samples this rank ran, per validation;
  ``val_model``: the model type validated and how many variant convs
  (DOConv, RefConv, DWSConv) it still held (0 when FoldHook folded it);
* ``metrics``: the metrics each validation returned on this rank;
* ``sync_bn`` / ``batch_norm``: SyncBatchNorm / BatchNorm layers trained;
* ``checksum``: sha256 of every parameter after training (equal on every
  rank when DDP kept the replicas identical; BN running statistics are
  left out: each rank updates them with its own last batch).
"""
import hashlib
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

VARIANTS = ('DOConv', 'RefConv', 'DWSConv')


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def state_checksum(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Record per-rank facts of a run (see the module docstring)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.record = dict(saved=0, val_samples=[], val_model=[], metrics=[])

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        self.record.update(
            rank=get_rank(), start_iter=runner.iter,
            wrapper=type(runner.model).__name__,
            sync_bn=sum(isinstance(m, nn.SyncBatchNorm)
                        for m in model.modules()),
            batch_norm=sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
                           for m in model.modules()))

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        self.record['saved'] += 1

    def before_val_epoch(self, runner) -> None:
        model = _unwrap(runner.model)
        self.record['val_samples'].append(0)
        self.record['val_model'].append([
            type(model).__name__,
            sum(type(m).__name__ in VARIANTS for m in model.modules())])

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self.record['val_samples'][-1] += len(outputs or [])

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.record['metrics'].append(
            {k: float(v) for k, v in (metrics or {}).items()
             if isinstance(v, (int, float))})

    def after_train(self, runner) -> None:
        self.record['end_iter'] = runner.iter
        with torch.no_grad():
            self.record['checksum'] = state_checksum(_unwrap(runner.model))

    def after_run(self, runner) -> None:
        path = osp.join(runner.work_dir,
                        f'probe_rank{get_rank()}_{runner.timestamp}.json')
        with open(path, 'w') as file:
            json.dump(self.record, file)
