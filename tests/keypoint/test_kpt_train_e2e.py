"""End to end: the real Runner trains Keypoint R-CNN on a tiny keypoint set.

The keypoint loss must fall, and ``tools/test.py`` must report COCO
keypoint AP for the checkpoint.
"""
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmconvplug.datagen import make_tiny_coco_keypoints

REPO = osp.join(osp.dirname(__file__), '..', '..')
CONFIG = osp.join(REPO, 'configs', 'keypoint_rcnn',
                  'keypoint-rcnn_r18_fpn_tiny_coco.py')
MAX_ITERS = 20


def _tiny_cfg(root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = root + '/'
    cfg.train_dataloader.batch_size = 2
    # Train only; the checkpoint is evaluated through tools/test.py.
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.train_cfg.max_iters = MAX_ITERS
    cfg.train_cfg.val_interval = MAX_ITERS
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0,
             end=5)
    ]
    cfg.default_hooks.logger.interval = 5
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    return cfg


@pytest.mark.slow
def test_training_lowers_keypoint_loss_and_test_reports_keypoint_ap(
        tmp_path):
    root = str(tmp_path / 'coco')
    make_tiny_coco_keypoints(root, num_train=16, num_val=4, size=(128, 128))
    work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(_tiny_cfg(root, work_dir))
    runner.train()

    history, _ = runner.message_hub.get_scalar('train/loss_keypoint').data
    assert len(history) == MAX_ITERS
    first, last = np.mean(history[:5]), np.mean(history[-5:])
    assert first > 6.0  # about log(56 * 56) = 8.05 at the start
    assert last < first - 0.5, (first, last)

    ann_file = osp.join(root, 'annotations', 'person_keypoints_val2017.json')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), CONFIG,
         osp.join(work_dir, f'iter_{MAX_ITERS}.pth'),
         '--work-dir', str(tmp_path / 'test'), '--cfg-options',
         f'test_dataloader.dataset.data_root={root}/',
         f'test_evaluator.ann_file={ann_file}'],
        capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    found = re.search(r'coco/keypoints_mAP: ([0-9.]+)', output)
    assert found, output[-3000:]
    assert 0.0 <= float(found.group(1)) <= 1.0
    assert re.search(r'coco/bbox_mAP: ([0-9.]+)', output)
