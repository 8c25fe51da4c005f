"""Conformance: EMA (``EMAHook``, ``ExponentialMovingAverage``), all variants.

The entry of ``docs/conformance.md``: validation, the folded copy that
``FoldHook`` validates, and a folded export of the run's checkpoint all use
the EMA weights, as the stock stack does with a plain conv.

A real ``Runner`` trains a one-conv model for a few iterations with a large
learning rate and ``EMAHook(momentum=0.5)``, so the EMA weights are far from
the raw ones. A probe hook of the highest priority copies both before
``EMAHook`` swaps them (``before_val_epoch``); one of the lowest priority
records what the loop then runs. The expectation is computed from those
copies (the unfolded EMA model), independent of the fold code. Parametrized
by :func:`mmconvplug.convs.conv_variants`: a new variant gets the checks by
being registered.
"""
import copy

import pytest
import torch
from mmcv.cnn import build_conv_layer
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import EMAHook, Hook
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmconvplug.apis.export import export_folded_checkpoint
from mmconvplug.convs import conv_variants
from mmconvplug.convs.base import build_reference_layer
from mmconvplug.engine.hooks import FoldHook, FoldHookOrderError

VARIANTS = sorted(name for name, cls in conv_variants().items()
                  if cls.__module__.startswith('mmconvplug.'))
FOLDABLE = [name for name in VARIANTS
            if build_reference_layer(conv_variants()[name]).foldable]
IN_CHANNELS, CHANNELS, SIZE, ITERS = 3, 8, 6, 3
INPUTS = torch.randn(2, IN_CHANNELS, SIZE, SIZE,
                     generator=torch.Generator().manual_seed(7))


@MODELS.register_module(force=True)
class EMAConformanceNet(BaseModel):
    """One ``conv_cfg`` conv (3 -> 8, 3x3) regressed onto a fixed target."""

    def __init__(self, conv_cfg=None):
        super().__init__()
        self.conv = build_conv_layer(conv_cfg, IN_CHANNELS, CHANNELS, 3,
                                     padding=1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if not isinstance(inputs, torch.Tensor):
            inputs = torch.stack(inputs)
        out = self.conv(inputs)
        if mode == 'loss':
            return dict(loss=((out - 1.0)**2).mean())
        if mode == 'predict':
            return [dict(mean=o.mean()) for o in out]
        return out


class _Images(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(IN_CHANNELS, SIZE, SIZE,
                                       generator=generator))


class _MeanOutput(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['mean']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(mean_output=sum(results) / len(results))


class _BeforeEMASwap(Hook):
    """Copies the raw and the EMA model before ``EMAHook`` swaps them."""
    priority = 'HIGHEST'

    def before_val_epoch(self, runner):
        ema_hook = next(h for h in runner.hooks if isinstance(h, EMAHook))
        self.raw = copy.deepcopy(ema_hook.src_model).eval()
        self.ema = copy.deepcopy(ema_hook.ema_model.module).eval()


class _Validated(Hook):
    """Records the model the validation loop runs and its outputs on
    ``INPUTS`` (first batch, in the loop's eval mode), and the trained model
    after the loop."""
    priority = 'LOWEST'

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx == 0:
            self.model = runner.model
            assert not self.model.training
            with torch.no_grad():
                self.outputs = self.model(INPUTS)

    def after_val_epoch(self, runner, metrics=None):
        self.restored = copy.deepcopy(runner.model)


def _runner(work_dir, name, fold_hook=None, ema_priority=49):
    hooks = [_BeforeEMASwap(), _Validated(),
             dict(type='EMAHook', momentum=0.5, priority=ema_priority)]
    if fold_hook is not None:
        hooks.append(fold_hook)
    loader = dict(dataset=_Images(), batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='default_collate'))
    torch.manual_seed(0)
    return Runner(
        model=EMAConformanceNet(conv_cfg=dict(type=name)),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=Evaluator(_MeanOutput()),
        train_cfg=dict(by_epoch=False, max_iters=ITERS, val_interval=ITERS),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        custom_hooks=hooks,
        default_hooks=dict(
            logger=None, param_scheduler=None, timer=None,
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=ITERS)),
        default_scope='mmengine',
        experiment_name=f'ema_{name}_{work_dir.name}')


def _probes(runner):
    return [h for h in runner.hooks if isinstance(h, (_BeforeEMASwap,
                                                      _Validated))]


def _outputs(model, inputs):
    with torch.no_grad():
        return model.eval()(inputs)


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


def _check_validated_is_ema(before, validated):
    ema, raw = _outputs(before.ema, INPUTS), _outputs(before.raw, INPUTS)
    # The test can fail: the EMA and the raw weights compute different things.
    assert _relative(raw, ema) > 1e-2
    assert _relative(validated.outputs, ema) < 1e-5
    # After validation the trained model holds the raw weights again.
    assert _relative(_outputs(validated.restored, INPUTS), raw) < 1e-6


@pytest.mark.parametrize('name', VARIANTS)
def test_validation_runs_the_ema_weights(tmp_path, name):
    """No FoldHook: the loop validates the variant with the EMA weights
    (``EMAHook`` writes them through ``.data``, which bypasses a kernel
    cache's version key; the loop's ``eval()`` must not leave it stale)."""
    runner = _runner(tmp_path / 'run', name)
    runner.train()
    before, validated = _probes(runner)
    _check_validated_is_ema(before, validated)
    assert validated.model.conv.__class__ is conv_variants()[name]


@pytest.mark.parametrize('name', FOLDABLE)
def test_fold_hook_folds_the_ema_weights(tmp_path, name):
    runner = _runner(tmp_path / 'run', name,
                     fold_hook=FoldHook(log_complexity=False))
    runner.train()
    before, validated = _probes(runner)
    assert type(validated.model.conv) is nn.Conv2d  # the folded copy ran
    _check_validated_is_ema(before, validated)


@pytest.mark.parametrize('name', FOLDABLE)
def test_folded_export_uses_the_ema_weights(tmp_path, name):
    """The checkpoint's ``state_dict`` holds the EMA weights (``EMAHook``
    swaps them in before saving), so the export folds what was validated."""
    runner = _runner(tmp_path / 'run', name)
    runner.train()
    before, _ = _probes(runner)
    config = tmp_path / 'net.py'
    config.write_text(
        f"default_scope = 'mmengine'\n"
        "model = dict(type='EMAConformanceNet', "
        f"conv_cfg=dict(type={name!r}))\n")
    out = tmp_path / 'folded.pth'
    result = export_folded_checkpoint(
        str(config), str(tmp_path / 'run' / f'iter_{ITERS}.pth'), str(out),
        input_shape=(SIZE, SIZE))
    assert 'ema_state_dict' in result.dropped
    plain = EMAConformanceNet(conv_cfg=None)
    state = torch.load(out, map_location='cpu', weights_only=True)
    plain.load_state_dict(state['state_dict'], strict=True)
    ema, raw = _outputs(before.ema, INPUTS), _outputs(before.raw, INPUTS)
    assert _relative(raw, ema) > 1e-2
    assert _relative(_outputs(plain, INPUTS), ema) < 1e-5


def test_fold_hook_refuses_an_ema_hook_that_runs_after_it(tmp_path):
    runner = _runner(tmp_path / 'run', FOLDABLE[0],
                     fold_hook=FoldHook(log_complexity=False),
                     ema_priority='LOW')
    with pytest.raises(FoldHookOrderError,
                       match=r'runs before EMAHook.*priority=49'):
        runner.train()
