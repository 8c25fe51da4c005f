"""Tiny models built from the project's configs, with one real batch each.

The configs are the CPU demos (``configs/demo``) and the tiny Keypoint
R-CNN, with DO-Conv in the backbone; the batches come from freshly generated
tiny datasets through the configs' own pipelines and the stock mmdet / mmseg
dataset classes (no hand-made tensors).
"""
import copy
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from mmconvplug.datagen import (
    make_tiny_cityscapes,
    make_tiny_coco,
    make_tiny_coco_keypoints,
    make_tiny_voc,
    set_data_root,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: name -> (config under configs/, generator, sub-directory of the data).
CASES = {
    'ssd': ('demo/ssd_r18_tiny_voc.py', make_tiny_voc, 'VOCdevkit'),
    'mask_rcnn': ('demo/mask_rcnn_r18_tiny_coco.py', make_tiny_coco,
                  'coco'),
    'deeplabv3plus': ('demo/deeplabv3plus_r18_tiny_cityscapes.py',
                      make_tiny_cityscapes, 'cityscapes'),
    'keypoint_rcnn': ('keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_coco.py',
                      make_tiny_coco_keypoints, 'coco'),
}


def make_case_data(name: str, root: str) -> str:
    """Generate the tiny dataset of case ``name`` under ``root``; return
    its data_root."""
    _, make, sub = CASES[name]
    if make is make_tiny_voc:
        make(root, num_train=2, num_val=2, size=(96, 96), seed=0)
    else:
        make(osp.join(root, sub), num_train=2, num_val=2, size=(96, 96),
             seed=0)
    return osp.join(root, sub) + '/'


def case_config(name: str, data_root: str,
                conv_cfg: Optional[dict] = None) -> Config:
    """The case's config on ``data_root`` with ``conv_cfg`` (default
    DO-Conv) in the backbone, batch size 2."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', CASES[name][0]))
    set_data_root(cfg, data_root)
    cfg.model.backbone.conv_cfg = conv_cfg or dict(type='DOConv')
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    return cfg


def build_model(cfg: Config, seed: int = 0) -> torch.nn.Module:
    """Build and initialise (as the Runner does) ``cfg.model``."""
    init_default_scope(cfg.default_scope)
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model


def first_batch(cfg: Config, split: str) -> Dict:
    """The first batch of ``cfg``'s ``split`` ('train' / 'val') loader."""
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(
        copy.deepcopy(cfg[f'{split}_dataloader']), seed=0)
    return next(iter(loader))
