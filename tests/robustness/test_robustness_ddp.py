"""Real 2-process DDP on CPU (gloo) gives the 1-process result.

``tools/dist_train.sh CONFIG 2`` (torchrun, ``--launcher pytorch``,
``env_cfg.dist_cfg.backend='gloo'``) trains the tiny DO-Conv segmenter of
:mod:`robustness_tiny_seg` with batch 2 per process; ``tools/train.py``
trains the same config on one process with batch 4 and the same seed. Both
validate through ``FoldHook`` (a folded copy of the model).

Why they must agree (see :mod:`robustness_tiny_seg`): GroupNorm (no batch
statistics), no random augmentation, ``InfiniteSampler`` (the two ranks'
half-batches are exactly the one-process batch), a per-pixel mean loss over
same-sized images (DDP's gradient average is the global-batch gradient).
What remains is floating-point summation order (gloo's all-reduce and the
split batch), so weights agree to ``WEIGHT_ATOL`` and mIoU to ``MIOU_ATOL``
points; measured max weight difference 3e-8, mIoU identical.
"""
import os.path as osp

import pytest
from robustness_tiny_seg import (
    dist_train_command,
    free_port,
    logs,
    make_data,
    max_abs_difference,
    run,
    state_dict,
    train_command,
    val_metrics,
    write_config,
)

WEIGHT_ATOL = 1e-5
MIOU_ATOL = 0.05
TOTAL_BATCH = 4
MAX_ITERS = 4

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_data(str(tmp_path_factory.mktemp('tiny_cityscapes')))


def test_two_process_ddp_matches_one_process(data_root, tmp_path):
    single_cfg = write_config(
        str(tmp_path / 'single.py'), data_root, batch_size=TOTAL_BATCH,
        max_iters=MAX_ITERS)
    ddp_cfg = write_config(
        str(tmp_path / 'ddp.py'), data_root, batch_size=TOTAL_BATCH // 2,
        max_iters=MAX_ITERS)
    single_dir, ddp_dir = str(tmp_path / 'single'), str(tmp_path / 'ddp')

    run(dist_train_command(ddp_cfg, ddp_dir, 2), PORT=str(free_port()))
    run(train_command(single_cfg, single_dir))

    # Rank 0 wrote the checkpoint (once), with the trained -- unfolded --
    # DO-Conv parameters: validation folded a copy, not the model.
    ckpt = f'iter_{MAX_ITERS}.pth'
    assert osp.isfile(osp.join(ddp_dir, ckpt))
    ddp_weights = state_dict(osp.join(ddp_dir, ckpt))
    assert any(key.endswith('.D_delta') for key in ddp_weights)
    ddp_log = logs(ddp_dir)
    assert 'FoldHook (val)' in ddp_log
    assert 'Distributed training: True' in ddp_log

    difference = max_abs_difference(
        ddp_weights, state_dict(osp.join(single_dir, ckpt)))
    print(f'max |w_ddp - w_single| = {difference:.3g}')
    assert difference <= WEIGHT_ATOL

    ddp_miou = val_metrics(ddp_dir)['mIoU']
    single_miou = val_metrics(single_dir)['mIoU']
    print(f'mIoU: ddp {ddp_miou}, single {single_miou}')
    assert abs(ddp_miou - single_miou) <= MIOU_ATOL
