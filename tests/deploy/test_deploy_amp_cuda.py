"""``tools/train.py --amp`` on a GPU: tiny SSD, Mask R-CNN and DeepLabv3+
with DO-Conv, a few iterations each through mmengine's ``AmpOptimWrapper``
(float16 autocast, dynamic loss scaling).

mmengine refuses ``AmpOptimWrapper`` on CPU, so these need CUDA and are
skipped without it. On a GPU machine:

    .venv/bin/python -m pytest -q -m cuda tests/deploy/test_deploy_amp_cuda.py
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from deploy_tiny_models import REPO, case_config, make_case_data

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason='needs a CUDA GPU: mmengine AmpOptimWrapper refuses the CPU'),
]

ITERS = 6


def _load_train_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'deploy_tests_train', osp.join(REPO, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('case', ['ssd', 'mask_rcnn', 'deeplabv3plus'])
def test_train_amp_with_doconv(tmp_path, case):
    data_root = make_case_data(case, str(tmp_path / 'data'))
    cfg = case_config(case, data_root)
    work = str(tmp_path / 'work')
    cfg.train_cfg.max_iters = ITERS
    cfg.train_cfg.val_interval = ITERS
    cfg.param_scheduler = [
        dict(type='ConstantLR', factor=1.0, by_epoch=False)
    ]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=ITERS)
    cfg.log_processor = dict(type='LogProcessor', window_size=1,
                             by_epoch=False)
    cfg.custom_hooks = [dict(type='FoldHook')]
    cfg.visualizer.name = f'visualizer:{work}'
    config = str(tmp_path / 'config.py')
    cfg.dump(config)

    assert _load_train_tool().main([config, '--amp', '--work-dir', work]) == 0

    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        records = [json.loads(line) for line in f if line.strip()]
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == ITERS and np.isfinite(losses).all()
    ckpt = torch.load(osp.join(work, f'iter_{ITERS}.pth'), weights_only=True)
    assert 'loss_scaler' in ckpt['optimizer']  # AmpOptimWrapper was used
    for name, tensor in ckpt['state_dict'].items():
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float32, name
            assert torch.isfinite(tensor).all(), name
