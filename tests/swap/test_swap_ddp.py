"""A conv_swap under real 2-process DDP (gloo, CPU) gives the 1-process run.

The swap happens in ``MODELS.build``, before the Runner wraps the model in
DDP and builds the optimizer, so DDP registers (and all-reduces) the
variants' parameters. The tiny GroupNorm segmenter of
``tests/robustness/robustness_tiny_seg.py`` (plain convs everywhere) gets a
DO-Conv ``conv_swap`` on the backbone and decode head from the command
line; 2 processes x batch 2 and 1 process x batch 4 must end with the same
weights (float summation order aside).
"""
import os.path as osp
import sys

import pytest
from swap_test_utils import REPO

sys.path.insert(0, osp.join(REPO, 'tests', 'robustness'))
from robustness_tiny_seg import (  # noqa: E402
    dist_train_command,
    free_port,
    logs,
    make_data,
    max_abs_difference,
    run,
    state_dict,
    train_command,
    write_config,
)

pytestmark = pytest.mark.slow

ITERS = 2
SWAP = ['--cfg-options', 'model.conv_swap.type=DOConv',
        'model.conv_swap.include=[backbone,decode_head]']


def test_swap_under_two_process_ddp_matches_one_process(tmp_path):
    data_root = make_data(str(tmp_path / 'data'), num_train=8, num_val=2)
    # conv_cfg Conv2d: plain convs; the variants come from the swap only
    single_cfg = write_config(str(tmp_path / 'single.py'), data_root,
                              conv_type='Conv2d', batch_size=4,
                              max_iters=ITERS, backbone_variant=False)
    ddp_cfg = write_config(str(tmp_path / 'ddp.py'), data_root,
                           conv_type='Conv2d', batch_size=2,
                           max_iters=ITERS, backbone_variant=False)
    single_dir, ddp_dir = str(tmp_path / 'single'), str(tmp_path / 'ddp')
    run(dist_train_command(ddp_cfg, ddp_dir, 2, *SWAP),
        PORT=str(free_port()))
    run(train_command(single_cfg, single_dir, *SWAP))

    ddp_log = logs(ddp_dir)
    assert 'Distributed training: True' in ddp_log
    assert ddp_log.count('conv_swap on EncoderDecoder') == 1  # rank 0 logs
    ddp_weights = state_dict(osp.join(ddp_dir, f'iter_{ITERS}.pth'))
    swapped = {k[:-len('.D_delta')] for k in ddp_weights
               if k.endswith('.D_delta')}
    assert 'decode_head.convs.0.conv' in swapped
    assert 'backbone.layer1.0.conv1' in swapped
    assert any(ddp_weights[f'{name}.D_delta'].abs().max() > 0
               for name in swapped), 'DDP did not train the variants'
    difference = max_abs_difference(
        ddp_weights, state_dict(osp.join(single_dir, f'iter_{ITERS}.pth')))
    assert difference <= 1e-5, difference
