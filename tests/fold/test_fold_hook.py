"""FoldHook through the real Runner: validation on a folded copy leaves
training (weights, losses, EMA) exactly as without the hook."""
import pytest
import torch
from fold_runner_helpers import make_data, tiny_cfg, variant_conv_cfg
from mmengine.runner import Runner

from mmconvplug.engine.hooks import FoldHook

EMA = dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.1,
           priority=49)


def train(tmp_path, name, data_root, hooks):
    cfg = tiny_cfg('cityscapes', data_root, str(tmp_path / name),
                   variant_conv_cfg(), iters=2, val_interval=1,
                   custom_hooks=hooks)
    runner = Runner.from_cfg(cfg)
    losses = []

    original_train_step = runner.model.train_step

    def recording_train_step(data, optim_wrapper):
        log_vars = original_train_step(data, optim_wrapper)
        losses.append(float(log_vars['loss']))
        return log_vars

    runner.model.train_step = recording_train_step
    runner.train()
    return runner, losses, runner.message_hub.get_scalar('val/mIoU').current()


@pytest.mark.slow
def test_training_is_identical_with_and_without_fold_hook(tmp_path):
    data_root = make_data(str(tmp_path / 'data'), 'cityscapes')
    plain, plain_losses, plain_miou = train(tmp_path, 'plain', data_root,
                                            [EMA])
    hooked, hooked_losses, hooked_miou = train(
        tmp_path, 'hooked', data_root, [EMA, dict(type='FoldHook')])

    assert len(plain_losses) == 2 and plain_losses == hooked_losses
    plain_state = plain.model.state_dict()
    hooked_state = hooked.model.state_dict()
    assert plain_state.keys() == hooked_state.keys()
    for key, value in plain_state.items():
        assert torch.equal(value, hooked_state[key]), key
    # the EMA copies, and the optimizer states, are identical too
    ema = [h for h in plain.hooks if type(h).__name__ == 'EMAHook'][0]
    ema_hooked = [h for h in hooked.hooks if type(h).__name__ == 'EMAHook'][0]
    for key, value in ema.ema_model.state_dict().items():
        assert torch.equal(value, ema_hooked.ema_model.state_dict()[key]), key
    for a, b in zip(plain.optim_wrapper.optimizer.state.values(),
                    hooked.optim_wrapper.optimizer.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a)

    fold_hook = [h for h in hooked.hooks if isinstance(h, FoldHook)][0]
    assert fold_hook.last_report.folded  # the backbone convs were folded
    assert fold_hook.last_verification.max_rel_error < 1e-3
    # the training model keeps its variants: only the copy was folded
    assert type(hooked.model.backbone.stem[0]).__name__ == (
        variant_conv_cfg()['type'])
    # the folded (EMA) model scores what the unfolded (EMA) model scores
    assert hooked_miou == pytest.approx(plain_miou, abs=0.1)


def test_fold_hook_rejects_bad_settings():
    with pytest.raises(ValueError, match='tolerance must be a positive'):
        FoldHook(tolerance=0)
    with pytest.raises(ValueError, match='timing_iters must be'):
        FoldHook(timing_iters=0)
