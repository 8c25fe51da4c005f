"""SIGKILL mid-training, ``--resume``: the same weights as an unbroken run.

The tiny DO-Conv segmenter of :mod:`robustness_tiny_seg` trains for
``MAX_ITERS`` iterations with a checkpoint every 2 and
``randomness=dict(seed=0, deterministic=True)``. One run goes through; a
second is killed with SIGKILL as soon as its first checkpoint is recorded
(``last_checkpoint`` written, so the kill lands while it is training on),
then restarted with ``tools/train.py --resume``. Both must end with
*identical* weights, optimizer momentum and iteration count (tolerance 0).

Why exact: the loop is iteration-based. On resume mmengine restores the
model, optimizer, LR scheduler and message hub, then advances the data
iterator by the iterations already done, so the next batch is the one the
killed run would have seen (``InfiniteSampler`` with a fixed seed). An
epoch-based loop resumes at the start of the next epoch instead, so a
checkpoint taken mid-epoch would replay or skip data; checkpoint at epoch
ends there. Exactness also needs no randomness beyond the seeded init and
sampler: no random augmentation, no dropout (the skipped iterations do not
replay the model's RNG draws).
"""
import os
import os.path as osp
import signal
import subprocess
import time

import pytest
import torch
from robustness_tiny_seg import (
    REPO,
    child_env,
    logs,
    make_data,
    run,
    train_command,
    write_config,
)

from mmconvplug.utils import load_checkpoint_file

MAX_ITERS = 10
CHECKPOINT_INTERVAL = 2

pytestmark = pytest.mark.slow


def _kill_after_first_checkpoint(command, work_dir, timeout=240):
    """Start training, SIGKILL it once a checkpoint is recorded."""
    process = subprocess.Popen(
        command, cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    marker = osp.join(work_dir, 'last_checkpoint')
    deadline = time.monotonic() + timeout
    try:
        while not osp.exists(marker):
            if process.poll() is not None:
                raise AssertionError('training ended before it could be '
                                     f'killed:\n{process.stderr.read()}')
            if time.monotonic() > deadline:
                raise AssertionError('no checkpoint within the timeout')
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    return process.returncode


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    data_root = make_data(str(tmp_path / 'data'))
    config = write_config(
        str(tmp_path / 'cfg.py'), data_root, batch_size=4,
        max_iters=MAX_ITERS, checkpoint_interval=CHECKPOINT_INTERVAL,
        milestone=5)
    straight_dir = str(tmp_path / 'straight')
    crashed_dir = str(tmp_path / 'crashed')

    run(train_command(config, straight_dir))

    returncode = _kill_after_first_checkpoint(
        train_command(config, crashed_dir), crashed_dir)
    assert returncode == -signal.SIGKILL
    final = f'iter_{MAX_ITERS}.pth'
    assert not osp.exists(osp.join(crashed_dir, final)), 'killed too late'
    with open(osp.join(crashed_dir, 'last_checkpoint')) as file:
        resumed_from = load_checkpoint_file(file.read().strip())
    resumed_iter = resumed_from['meta']['iter']
    assert 0 < resumed_iter < MAX_ITERS

    run(train_command(config, crashed_dir, '--resume'))
    assert f'Advance dataloader {resumed_iter} steps' in logs(crashed_dir)

    straight = load_checkpoint_file(osp.join(straight_dir, final))
    resumed = load_checkpoint_file(osp.join(crashed_dir, final))
    assert resumed['meta']['iter'] == straight['meta']['iter'] == MAX_ITERS
    assert set(resumed['state_dict']) == set(straight['state_dict'])
    for key, value in straight['state_dict'].items():
        assert torch.equal(resumed['state_dict'][key], value), key
    straight_momenta = straight['optimizer']['state']
    resumed_momenta = resumed['optimizer']['state']
    assert straight_momenta.keys() == resumed_momenta.keys()
    for index, state in straight_momenta.items():
        assert torch.equal(resumed_momenta[index]['momentum_buffer'],
                           state['momentum_buffer'])
    for key in ('last_step', '_global_step', '_last_value'):
        assert (resumed['param_schedulers'][0][key] ==
                straight['param_schedulers'][0][key]), key
