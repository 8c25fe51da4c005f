"""A test-only hook: what a run's frozen stages did, per rank.

``dict(type='FrozenStageProbeHook')`` in ``custom_hooks`` (with
``custom_imports`` of this module; ``tests/distributed`` is on
``PYTHONPATH``) writes ``frozen_probe_rank{rank}.json`` in the work dir:

* ``wrapper`` and ``find_unused_parameters``: the DDP wrapper the Runner
  built and its flag (default: False);
* ``trainable_frozen``: parameters of the frozen stages (the backbone's
  stem and ``layer1`` for ``frozen_stages=1``) that required grad when
  training started: the set DDP registered when it wrapped the model,
  before any ``train()`` call refroze the stage;
* ``variants_frozen``: conv variants in those stages (so the check is not
  vacuous);
* ``frozen_unchanged``: the frozen stages' parameters after training equal
  those at the start;
* ``iters``: training iterations run.
"""
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmconvplug.convs import is_conv_variant


@HOOKS.register_module()
class FrozenStageProbeHook(Hook):
    """Record what happened to the frozen stages (module docstring)."""

    priority = 'LOWEST'

    def __init__(self, prefixes=('backbone.conv1', 'backbone.bn1',
                                 'backbone.layer1')) -> None:
        self.prefixes = tuple(prefixes)
        self.record = dict(iters=0)
        self.start = {}

    def _model(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _frozen(self, runner) -> dict:
        return {n: p for n, p in self._model(runner).named_parameters()
                if n.startswith(self.prefixes)}

    def before_train(self, runner) -> None:
        frozen = self._frozen(runner)
        self.start = {n: p.detach().clone() for n, p in frozen.items()}
        self.record.update(
            rank=get_rank(),
            wrapper=type(runner.model).__name__,
            find_unused_parameters=getattr(runner.model,
                                           'find_unused_parameters', None),
            frozen_params=len(frozen),
            trainable_frozen=sorted(n for n, p in frozen.items()
                                    if p.requires_grad),
            variants_frozen=sum(
                is_conv_variant(m)
                for n, m in self._model(runner).named_modules()
                if n.startswith(self.prefixes)))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.record['iters'] += 1

    def after_train(self, runner) -> None:
        with torch.no_grad():
            self.record['frozen_unchanged'] = all(
                torch.equal(p, self.start[n])
                for n, p in self._frozen(runner).items())

    def after_run(self, runner) -> None:
        path = osp.join(runner.work_dir, f'frozen_probe_rank{get_rank()}.json')
        with open(path, 'w') as file:
            json.dump(self.record, file)
