"""Tiny models trained until their metric is well above chance, for the
deploy tests (the metric through the exported graphs, INT8).

Each case is a project config on a freshly generated tiny dataset, trained
by the real mmengine Runner (AdamW, warm-up + cosine, as the demo), with a
conv variant in the backbone. :func:`train_case` returns the written config,
the checkpoint and the Runner's validation metrics.
"""
import copy
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmconvplug.datagen import set_data_root
from mmconvplug.datagen.catalog import ensure_tiny_dataset
from mmconvplug.utils import load_checkpoint_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass(frozen=True)
class TrainedCase:
    """config under configs/, tiny dataset name, counts, iterations,
    batch size, the metric and its floor (well above chance)."""

    config: str
    dataset: str
    num_train: int
    num_val: int
    iters: int
    batch_size: int
    metric: str
    floor: float
    two_stage_without_mask: bool = False


CASES: Dict[str, TrainedCase] = {
    'ssd': TrainedCase('demo/ssd_r18_tiny_voc.py', 'voc', 64, 16, 60, 8,
                       'pascal_voc/mAP', 0.4),
    'deeplabv3plus': TrainedCase(
        'demo/deeplabv3plus_r18_tiny_cityscapes.py', 'cityscapes', 32, 8,
        80, 4, 'mIoU', 20.0),
    'mask_rcnn': TrainedCase('demo/mask_rcnn_r18_tiny_coco.py', 'coco', 48,
                             12, 100, 4, 'coco/segm_mAP', 0.15),
    # The trained Mask R-CNN without its mask branch (derive_faster_rcnn).
    'faster_rcnn': TrainedCase('demo/mask_rcnn_r18_tiny_coco.py', 'coco',
                               48, 12, 100, 4, 'coco/bbox_mAP', 0.15,
                               two_stage_without_mask=True),
    'keypoint_rcnn': TrainedCase(
        'keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_coco.py', 'coco-keypoints',
        48, 12, 100, 4, 'coco/keypoints_mAP', 0.1),
}


def case_cfg(name: str, data_root: str, work_dir: str,
             conv_cfg: Optional[dict]) -> Config:
    """The case's config for a short run on ``data_root``."""
    case = CASES[name]
    cfg = Config.fromfile(osp.join(REPO, 'configs', case.config))
    set_data_root(cfg, data_root)
    if conv_cfg is not None:
        cfg.model.backbone.conv_cfg = conv_cfg
    if case.two_stage_without_mask:  # Faster R-CNN: no mask branch
        cfg.model.roi_head.mask_roi_extractor = None
        cfg.model.roi_head.mask_head = None
        for key in ('val_evaluator', 'test_evaluator'):
            cfg[key].metric = ['bbox']
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            pipeline = cfg[loader].dataset.pipeline
            for step in pipeline:
                if step['type'] == 'LoadAnnotations':
                    step['with_mask'] = False
    cfg.work_dir = work_dir
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = case.iters
    cfg.train_cfg.val_interval = case.iters
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=10),
        dict(type='CosineAnnealingLR', eta_min=2e-5, by_epoch=False,
             begin=10, end=case.iters)
    ]
    cfg.train_dataloader.batch_size = case.batch_size
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.default_hooks.logger.interval = 20
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=case.iters)
    cfg.randomness = dict(seed=0)
    cfg.visualizer.name = f'visualizer:{work_dir}'
    return cfg


def train_case(name: str, root: str,
               conv_cfg: Optional[dict] = None
               ) -> Tuple[str, str, Dict[str, float]]:
    """Generate the data, train, and return ``(config file, checkpoint,
    validation metrics)``."""
    case = CASES[name]
    data_root, _ = ensure_tiny_dataset(case.dataset, osp.join(root, 'data'),
                                       case.num_train, case.num_val)
    work_dir = osp.join(root, 'work')
    cfg = case_cfg(name, data_root, work_dir,
                   conv_cfg if conv_cfg is not None else dict(type='DOConv'))
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    metrics = {k[len('val/'):]: runner.message_hub.get_scalar(k).current()
               for k in runner.message_hub.log_scalars
               if k.startswith('val/')}
    config = osp.join(root, 'config.py')
    cfg.dump(config)
    (ckpt, ) = glob.glob(osp.join(work_dir, f'iter_{case.iters}.pth'))
    return config, ckpt, metrics


def derive_faster_rcnn(mask_config: str, mask_checkpoint: str, root: str,
                       conv_cfg: Optional[dict] = None
                       ) -> Tuple[str, str, Dict[str, float]]:
    """The trained Mask R-CNN as a Faster R-CNN: the same weights without
    the mask branch (``roi_head.mask_*``), the same data; ``(config,
    checkpoint, {})``."""
    data_root = Config.fromfile(mask_config).val_dataloader.dataset.data_root
    cfg = case_cfg('faster_rcnn', data_root, osp.join(root, 'work'),
                   conv_cfg if conv_cfg is not None else dict(type='DOConv'))
    state = load_checkpoint_file(mask_checkpoint)['state_dict']
    state = {k: v for k, v in state.items()
             if not k.startswith('roi_head.mask_')}
    checkpoint = osp.join(root, 'faster_rcnn.pth')
    torch.save({'meta': {}, 'state_dict': state}, checkpoint)
    config = osp.join(root, 'config.py')
    cfg.dump(config)
    return config, checkpoint, {}
