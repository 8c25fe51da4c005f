"""End to end: the real Runner trains Keypoint R-CNN on a tiny keypoint set.

The keypoint loss must fall, and testing must report COCO keypoint AP.
"""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmconvplug.datasets import make_tiny_coco_keypoints

CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'keypoint_rcnn',
    'keypoint-rcnn_r18_fpn_tiny_coco.py')
MAX_ITERS = 60


def _tiny_cfg(root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = root + '/'
        loader.batch_size = 2
    ann = osp.join(root, 'annotations', 'person_keypoints_val2017.json')
    cfg.val_evaluator.ann_file = ann
    cfg.test_evaluator.ann_file = ann
    cfg.train_cfg.max_iters = MAX_ITERS
    cfg.train_cfg.val_interval = MAX_ITERS + 1  # evaluate via test() only
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0,
             end=10)
    ]
    cfg.default_hooks.logger.interval = 5
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    return cfg


@pytest.mark.slow
def test_training_lowers_keypoint_loss_and_test_reports_keypoint_ap(
        tmp_path):
    root = str(tmp_path / 'coco')
    make_tiny_coco_keypoints(root, num_train=16, num_val=4, size=(128, 128))
    runner = Runner.from_cfg(_tiny_cfg(root, str(tmp_path / 'work')))
    runner.train()

    history, _ = runner.message_hub.get_scalar(
        'train/loss_keypoint').data
    assert len(history) == MAX_ITERS
    first, last = np.mean(history[:10]), np.mean(history[-10:])
    assert first > 6.0  # about log(56 * 56) = 8.05 at the start
    assert last < first - 0.5, (first, last)

    metrics = runner.test()
    for key in ('coco/keypoints_mAP', 'coco/keypoints_mAP_50',
                'coco/bbox_mAP'):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0
