"""A hand-made 14-keypoint file in the layout of the published CrowdPose json.

Same fields as the published file (the copy in mmpose's test data,
``tests/data/crowdpose/test_crowdpose.json``): annotations carry
``num_keypoints, iscrowd, keypoints, image_id, bbox, category_id, id`` and
no ``area`` or ``segmentation``; ``num_keypoints`` counts the 12 body
joints only (not top_head / neck); images carry ``crowdIndex``; the
category names the keypoints with ``head`` and lists COCO's 17-keypoint
skeleton. Three images (96 x 80):

* image 1: two persons with keypoints, head and neck labelled (so
  ``num_keypoints`` is 2 less than the labelled joints), the second one's
  box runs past the right border;
* image 2: a person with nothing labelled (``num_keypoints`` 0), and one
  with only head and neck labelled (``num_keypoints`` 0 as CrowdPose counts,
  though 2 joints carry flags);
* image 3: no annotation.
"""
import json
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

WIDTH, HEIGHT = 96, 80
NUM_KEYPOINTS = 14
PUBLISHED_NAMES = [
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle', 'head', 'neck'
]
PUBLISHED_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13],
                      [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
                      [9, 11]]


def person_keypoints(box: List[float], unlabelled: List[int]) -> List[int]:
    """14 (x, y, v) inside ``box``; indices in ``unlabelled`` get 0, 0, 0."""
    x0, y0, w, h = box
    triplets = []
    for k in range(NUM_KEYPOINTS):
        side = -1 if k % 2 else 1  # even: left_* (image right), odd: right_*
        x = int(x0 + w / 2 + side * (1 + (k % 4)) * w / 12)
        y = int(y0 + (k + 1) * h / 16)
        if k in unlabelled:
            triplets += [0, 0, 0]
        else:
            triplets += [min(x, WIDTH - 1), y, 1 if k % 3 == 0 else 2]
    return triplets


def crowdpose_count(keypoints: List[int]) -> int:
    """``num_keypoints`` as CrowdPose writes it: labelled body joints."""
    return sum(1 for v in keypoints[2::3][:12] if v > 0)


def _annotation(ann_id: int, image_id: int, box: List[float],
                keypoints: List[int]) -> Dict:
    return dict(num_keypoints=crowdpose_count(keypoints), iscrowd=0,
                keypoints=keypoints, image_id=image_id, bbox=box,
                category_id=1, id=ann_id)


def write_crowdpose_style(root: str, name: str = 'crowdpose_test.json',
                          drop_num_keypoints: bool = False) -> Dict[str, str]:
    """Write the set under ``root``; return ``ann_file``, ``img_dir``,
    ``root``.

    Args:
        drop_num_keypoints: leave ``num_keypoints`` out of every annotation
            (a file without the field).
    """
    img_dir = osp.join(root, 'images')
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for image_id, crowd in ((1, 0.33), (2, 0.0), (3, 0.0)):
        file_name = f'{100000 + image_id}.jpg'
        img = rng.integers(90, 110, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        cv2.imwrite(osp.join(img_dir, file_name), img)
        images.append(dict(file_name=file_name, id=image_id, height=HEIGHT,
                           width=WIDTH, crowdIndex=crowd))
    head_and_neck_only = list(range(12))
    annotations = [
        _annotation(11, 1, [6.0, 5.0, 32.0, 66.0],
                    person_keypoints([6.0, 5.0, 32.0, 66.0], [1, 6, 9])),
        # runs past the right border (96): the area rule clips it
        _annotation(12, 1, [60.0, 8.0, 40.0, 64.0],
                    person_keypoints([60.0, 8.0, 36.0, 64.0], [2])),
        _annotation(21, 2, [10.0, 10.0, 20.0, 40.0], [0] * 42),
        _annotation(22, 2, [50.0, 12.0, 30.0, 56.0],
                    person_keypoints([50.0, 12.0, 30.0, 56.0],
                                     head_and_neck_only)),
    ]
    if drop_num_keypoints:
        for ann in annotations:
            del ann['num_keypoints']
    category = dict(supercategory='person', id=1, name='person',
                    keypoints=PUBLISHED_NAMES, skeleton=PUBLISHED_SKELETON)
    ann_file = osp.join(ann_dir, name)
    with open(ann_file, 'w') as f:
        json.dump(dict(categories=[category], images=images,
                       annotations=annotations), f)
    return dict(ann_file=ann_file, img_dir=img_dir, root=root)
