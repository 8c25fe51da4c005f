"""A hand-made COCO person-keypoints set in the real on-disk format.

Three images (96 x 80) under ``val2017/`` and
``annotations/person_keypoints_val2017.json``:

* image 1: two persons with keypoints (v in {0, 1, 2});
* image 2: a person with ``num_keypoints == 0`` and a crowd person;
* image 3: no annotation at all.

Small enough to reason about in the tests, and covering COCO's edge cases.
"""
import json
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

from mmconvplug.keypoint import (
    COCO_PERSON_KEYPOINT_NAMES,
    COCO_PERSON_SKELETON,
)

WIDTH, HEIGHT = 96, 80


def _person_keypoints(box: List[float], hidden: List[int]) -> List[float]:
    """17 (x, y, v) inside ``box``; indices in ``hidden`` get v=0."""
    x0, y0, w, h = box
    triplets = []
    for k in range(17):
        side = 1 if k % 2 else -1  # odd: left_*, even: right_* (0 = nose)
        x = int(x0 + w / 2 + side * (2 + (k % 5)) * w / 16)
        y = int(y0 + (k + 1) * h / 19)
        if k in hidden:
            triplets += [0, 0, 0]
        else:
            triplets += [x, y, 1 if k % 3 == 0 else 2]
    return triplets


def _annotation(ann_id: int, image_id: int, box: List[float],
                keypoints: List[float], iscrowd: int = 0) -> Dict:
    num = sum(1 for v in keypoints[2::3] if v > 0)
    x0, y0, w, h = box
    return dict(
        id=ann_id, image_id=image_id, category_id=1, bbox=box, area=w * h,
        iscrowd=iscrowd, num_keypoints=num, keypoints=keypoints,
        segmentation=[[x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]])


def write_keypoint_coco(root: str) -> Dict[str, str]:
    """Write the set under ``root``; return ``ann_file`` and ``img_dir``."""
    img_dir = osp.join(root, 'val2017')
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for image_id in (1, 2, 3):
        name = f'{image_id:012d}.jpg'
        img = rng.integers(90, 110, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        cv2.imwrite(osp.join(img_dir, name), img)
        images.append(
            dict(id=image_id, file_name=name, width=WIDTH, height=HEIGHT))
    zero = [0] * 51
    annotations = [
        _annotation(1, 1, [8.0, 6.0, 30.0, 64.0],
                    _person_keypoints([8.0, 6.0, 30.0, 64.0], [3, 16])),
        _annotation(2, 1, [50.0, 10.0, 36.0, 62.0],
                    _person_keypoints([50.0, 10.0, 36.0, 62.0], [4])),
        _annotation(3, 2, [20.0, 10.0, 30.0, 50.0], zero),
        _annotation(4, 2, [55.0, 5.0, 35.0, 70.0], zero, iscrowd=1),
    ]
    category = dict(
        id=1, name='person', supercategory='person',
        keypoints=list(COCO_PERSON_KEYPOINT_NAMES),
        skeleton=[[a + 1, b + 1] for a, b in COCO_PERSON_SKELETON])
    ann_file = osp.join(ann_dir, 'person_keypoints_val2017.json')
    with open(ann_file, 'w') as f:
        json.dump(
            dict(info=dict(description='mmconvplug keypoint test set'),
                 licenses=[], images=images, annotations=annotations,
                 categories=[category]), f)
    return dict(ann_file=ann_file, img_dir=img_dir, root=root)
