"""Tiny COCO: ``train2017/``, ``val2017/`` and ``annotations/`` exactly as COCO.

``instances_{split}2017.json`` carries boxes and polygon masks for a few
shape classes (named after real COCO categories) and for stick persons;
``person_keypoints_{split}2017.json`` carries the same persons with COCO's 17
keypoints (v = 0 not labelled, 1 labelled but occluded, 2 visible),
``num_keypoints``, and a ``person`` category with ``keypoints`` and
``skeleton``. The category list is COCO's 80 categories with their real ids,
so mmdet's ``CocoDataset`` / ``CocoMetric`` read it with stock settings and the
same config runs on real COCO by changing ``data_root``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from mmconvplug.keypoint.coco_person_meta import (
    COCO_PERSON_KEYPOINT_NAMES,
    COCO_PERSON_SKELETON,
)

from .shapes import DrawnObject, compose_scene, mask_polygons
from .validation import check_generator_args

#: COCO's 80 category names, in id order, and their (non-contiguous) ids.
COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64,
    65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88,
    89, 90)
#: Outline drawn for each COCO class the tiny set uses (persons are stick
#: figures).
COCO_SHAPE_CLASSES: Dict[str, str] = {
    'circle': 'sports ball',
    'square': 'book',
    'triangle': 'kite',
    'star': 'frisbee',
}
_MIN_AREA = 20  # pixels: smaller visible remnants are not annotated


def coco_categories() -> List[dict]:
    """COCO's category list (id, name, supercategory) for the json files."""
    return [dict(id=i, name=n, supercategory='object')
            for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)]


def _person_category() -> dict:
    return dict(id=1, name='person', supercategory='person',
                keypoints=list(COCO_PERSON_KEYPOINT_NAMES),
                # The json stores the skeleton 1-based.
                skeleton=[[a + 1, b + 1] for a, b in COCO_PERSON_SKELETON])


def label_keypoints(points: np.ndarray, visible_mask: np.ndarray,
                    box: Sequence[float], width: int, height: int,
                    unlabelled: Sequence[int] = ()) -> List[float]:
    """COCO ``keypoints`` ``[x, y, v] * K`` of one drawn person.

    v=2: on the person's visible pixels. v=1: inside the person's box but
    covered by a later object. v=0 (x=y=0): outside the image or the box,
    or listed in ``unlabelled``.
    """
    x0, y0 = box[0], box[1]
    x1, y1 = box[0] + box[2], box[1] + box[3]
    out: List[float] = []
    for k, (x, y) in enumerate(points):
        xi, yi = int(round(x)), int(round(y))
        inside_box = x0 <= xi <= x1 and y0 <= yi <= y1
        in_image = 0 <= xi < width and 0 <= yi < height
        if not (in_image and inside_box) or k in unlabelled:
            out += [0.0, 0.0, 0]
            continue
        v = 2 if visible_mask[yi, xi] else 1
        out += [float(xi), float(yi), v]
    return out


def _keypoint_triplets(obj: DrawnObject, box: Sequence[float],
                       rng: np.random.Generator,
                       width: int, height: int) -> Tuple[List[float], int]:
    """COCO ``keypoints`` (x, y, v) * 17 and ``num_keypoints`` for a person.

    As :func:`label_keypoints`, and an ear turned away from the camera is
    left unlabelled (v=0), as COCO does.
    """
    hidden_ear = int(rng.integers(3, 6))  # 5 means: both ears labelled
    out = label_keypoints(obj.keypoints, obj.visible_mask, box, width,
                          height, unlabelled=(hidden_ear, ))
    return out, sum(1 for v in out[2::3] if v > 0)


def _annotation(obj: DrawnObject, ann_id: int, image_id: int,
                category_id: int, width: int, height: int) -> Optional[dict]:
    """The COCO annotation of one object, or ``None`` when nothing of it
    survives as a polygon.

    ``bbox`` and ``area`` are those of the polygons as pycocotools
    rasterises them, so box, mask and area agree exactly for every reader.
    """
    polygons = mask_polygons(obj.visible_mask)
    if not polygons:
        return None
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    area = float(mask_utils.area(rle))
    if area < _MIN_AREA:
        return None
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    return dict(id=ann_id, image_id=image_id, category_id=category_id,
                segmentation=polygons, area=area, bbox=[x, y, w, h],
                iscrowd=0)


def _write_split(root: str, split: str, num_images: int, size: Tuple[int, int],
                 rng: np.random.Generator, first_image_id: int,
                 num_objects: Tuple[int, int],
                 num_persons: Tuple[int, int]) -> Tuple[str, str]:
    width, height = size
    img_dir = osp.join(root, f'{split}2017')
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    name_to_id = dict(zip(COCO_CLASSES, COCO_CATEGORY_IDS))
    images, instances, person_anns = [], [], []
    ann_id = 1
    for i in range(num_images):
        image_id = first_image_id + i
        file_name = f'{image_id:012d}.jpg'
        img, objects = compose_scene(rng, width, height,
                                     list(COCO_SHAPE_CLASSES),
                                     num_objects=num_objects,
                                     num_persons=num_persons)
        cv2.imwrite(osp.join(img_dir, file_name), img[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, width=width,
                           height=height))
        for obj in objects:
            if obj.visible_mask.sum() < _MIN_AREA:
                continue
            ann = _annotation(obj, ann_id, image_id, name_to_id['person']
                              if obj.shape == 'person' else
                              name_to_id[COCO_SHAPE_CLASSES[obj.shape]],
                              width, height)
            if ann is None:
                continue
            instances.append(ann)
            if obj.shape == 'person':
                kps, n = _keypoint_triplets(obj, ann['bbox'], rng, width,
                                            height)
                person_anns.append(dict(ann, keypoints=kps, num_keypoints=n))
            ann_id += 1
    info = dict(description='mmconvplug tiny COCO (synthetic)', version='1.0')
    inst_path = osp.join(ann_dir, f'instances_{split}2017.json')
    kpt_path = osp.join(ann_dir, f'person_keypoints_{split}2017.json')
    with open(inst_path, 'w') as f:
        json.dump(dict(info=info, licenses=[], images=images,
                       annotations=instances,
                       categories=coco_categories()), f)
    with open(kpt_path, 'w') as f:
        json.dump(dict(info=info, licenses=[], images=images,
                       annotations=person_anns,
                       categories=[_person_category()]), f)
    return inst_path, kpt_path


def make_tiny_coco(root: str,
                   num_train: int = 64,
                   num_val: int = 16,
                   size: Sequence[int] = (128, 128),
                   seed: int = 0,
                   num_objects: Tuple[int, int] = (1, 4),
                   num_persons: Tuple[int, int] = (0, 2)) -> Dict[str, str]:
    """Write a tiny COCO under ``root`` (e.g. ``data/tiny/coco``).

    Returns the paths written, keyed ``instances_train``, ``instances_val``,
    ``keypoints_train``, ``keypoints_val``, ``train_images``, ``val_images``.
    """
    check_generator_args(num_train, num_val, size, seed)
    rng = np.random.default_rng(seed)
    size = (int(size[0]), int(size[1]))
    inst_tr, kpt_tr = _write_split(root, 'train', num_train, size, rng, 1,
                                   num_objects, num_persons)
    inst_va, kpt_va = _write_split(root, 'val', num_val, size, rng,
                                   num_train + 1, num_objects, num_persons)
    return dict(instances_train=inst_tr, instances_val=inst_va,
                keypoints_train=kpt_tr, keypoints_val=kpt_va,
                train_images=osp.join(root, 'train2017'),
                val_images=osp.join(root, 'val2017'))


def make_tiny_coco_keypoints(root: str,
                             num_train: int = 64,
                             num_val: int = 16,
                             size: Sequence[int] = (128, 128),
                             seed: int = 0) -> Dict[str, str]:
    """A tiny COCO whose scenes are mostly persons (1-3 per image, few
    distractor shapes): what a keypoint detector trains on.

    Same layout and return value as :func:`make_tiny_coco`; the files to
    train on are ``person_keypoints_{train,val}2017.json``.
    """
    return make_tiny_coco(root, num_train, num_val, size, seed,
                          num_objects=(0, 2), num_persons=(1, 3))
