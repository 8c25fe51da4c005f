"""Tiny-dataset generators: files in the real COCO / VOC / Cityscapes layouts.

This package writes datasets to disk; it defines no ``Dataset`` class (the
stock mmdet / mmseg ones read what it writes) and registers nothing, so
``import mmconvplug`` does not import it.

``python tools/make_tiny_datasets.py --root data/tiny`` writes VOC, COCO and
Cityscapes (``--which coco-keypoints crowdpose`` adds the person-heavy COCO
keypoint set and a 14-keypoint CrowdPose-layout set); the
stock mmdet / mmseg dataset classes read them, and the same configs run on
the real datasets by changing ``data_root``.
"""
from .catalog import (
    TINY_DATASETS,
    TinyDataset,
    ensure_tiny_dataset,
    make_tiny_dataset,
)
from .config_paths import set_data_root
from .shapes import compose_scene
from .tiny_cityscapes import CITYSCAPES_CLASSES, make_tiny_cityscapes
from .tiny_coco import (
    COCO_CLASSES,
    COCO_SHAPE_CLASSES,
    make_tiny_coco,
    make_tiny_coco_keypoints,
)
from .tiny_crowdpose import make_tiny_crowdpose
from .tiny_voc import VOC_CLASSES, VOC_SHAPE_CLASSES, make_tiny_voc

__all__ = [
    'TINY_DATASETS', 'TinyDataset', 'ensure_tiny_dataset',
    'make_tiny_dataset', 'compose_scene',
    'CITYSCAPES_CLASSES', 'make_tiny_cityscapes', 'COCO_CLASSES',
    'COCO_SHAPE_CLASSES', 'make_tiny_coco', 'make_tiny_coco_keypoints',
    'make_tiny_crowdpose',
    'VOC_CLASSES', 'VOC_SHAPE_CLASSES', 'make_tiny_voc', 'set_data_root'
]
