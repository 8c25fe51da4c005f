"""Tiny CrowdPose: 14 keypoints, in the layout and with the quirks of the
published files.

``images/`` and ``annotations/crowdpose_{trainval,test}.json`` (the
official file names; ``trainval`` holds the training split here, ``test``
the validation split). Each annotation has exactly the published fields,
``num_keypoints, iscrowd, keypoints, image_id, bbox, category_id, id``:

* **no** ``area`` and no ``segmentation`` (mmdet's ``CocoDataset`` and
  pycocotools' ``COCOeval`` need ``area``);
* ``num_keypoints`` as CrowdPose counts it: the labelled joints among the
  12 body joints, not ``top_head`` / ``neck`` (so it disagrees with the
  visibility flags whenever the head or neck is labelled, as in the
  published file: 5 / 10 / 12 for 7 / 12 / 14 labelled joints);
* each image entry carries a ``crowdIndex`` (here a stand-in: the fraction
  of persons overlapping another; nothing reads it);
* the category lists the keypoints as the file names them (``head``, not
  mmpose's ``top_head``) and COCO's 17-keypoint skeleton, 1-based, as the
  published category does (indices past 14: a reader must not use it).

The persons are the stick figures of :mod:`mmconvplug.datagen.shapes`:
CrowdPose's 12 body joints are COCO's shoulders to ankles, ``top_head`` sits
near the top of the head disc and ``neck`` between head and shoulders.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from mmconvplug.keypoint.crowdpose_meta import CROWDPOSE_COUNTED_KEYPOINTS

from .shapes import DrawnObject, compose_scene
from .tiny_coco import COCO_SHAPE_CLASSES, _annotation, label_keypoints
from .validation import check_generator_args

#: The category as the published file has it (names and skeleton).
PUBLISHED_KEYPOINT_NAMES = (
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle', 'head', 'neck')
PUBLISHED_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13],
                      [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
                      [9, 11]]
#: The official split names this generator writes (train, val).
SPLIT_FILES = ('crowdpose_trainval.json', 'crowdpose_test.json')


def crowdpose_points(coco_points: np.ndarray) -> np.ndarray:
    """CrowdPose's 14 joints (x, y) of a stick person from its 17 COCO ones.

    Args:
        coco_points: (17, 2) as drawn by
            :func:`~mmconvplug.datagen.shapes.person_keypoints`.

    Returns:
        (14, 2): COCO joints 5..16, then top of head, then neck.
    """
    ears = coco_points[3:5]
    head = ears.mean(axis=0)
    height = abs(ears[0, 0] - ears[1, 0]) / 0.14  # ears are 0.14 h apart
    shoulders = coco_points[5:7].mean(axis=0)
    top_head = head - [0.0, 0.07 * height]  # inside the 0.085 h head disc
    neck = shoulders - [0.0, 0.02 * height]
    return np.concatenate([coco_points[5:17], top_head[None], neck[None]])


def _crowd_index(objects: List[DrawnObject]) -> float:
    persons = [o.full_mask for o in objects if o.shape == 'person']
    if len(persons) < 2:
        return 0.0
    overlapping = sum(
        any((a & b).any() for j, b in enumerate(persons) if j != i)
        for i, a in enumerate(persons))
    return round(overlapping / len(persons), 2)


def _write_split(root: str, ann_name: str, num_images: int,
                 size: Tuple[int, int], rng: np.random.Generator,
                 first_image_id: int) -> str:
    width, height = size
    img_dir = osp.join(root, 'images')
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    images, annotations = [], []
    ann_id = first_image_id * 10
    for i in range(num_images):
        image_id = first_image_id + i
        file_name = f'{image_id}.jpg'
        img, objects = compose_scene(rng, width, height,
                                     list(COCO_SHAPE_CLASSES),
                                     num_objects=(0, 2), num_persons=(1, 3))
        cv2.imwrite(osp.join(img_dir, file_name), img[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(file_name=file_name, id=image_id, height=height,
                           width=width, crowdIndex=_crowd_index(objects)))
        for obj in objects:
            if obj.shape != 'person':
                continue
            coco_ann = _annotation(obj, ann_id, image_id, 1, width, height)
            if coco_ann is None:
                continue
            keypoints = label_keypoints(
                crowdpose_points(obj.keypoints), obj.visible_mask,
                coco_ann['bbox'], width, height)
            flags = np.asarray(keypoints[2::3])
            annotations.append(dict(
                num_keypoints=int(
                    (flags[list(CROWDPOSE_COUNTED_KEYPOINTS)] > 0).sum()),
                iscrowd=0, keypoints=keypoints, image_id=image_id,
                bbox=coco_ann['bbox'], category_id=1, id=ann_id))
            ann_id += 1
    category = dict(supercategory='person', id=1, name='person',
                    keypoints=list(PUBLISHED_KEYPOINT_NAMES),
                    skeleton=PUBLISHED_SKELETON)
    path = osp.join(ann_dir, ann_name)
    with open(path, 'w') as f:
        json.dump(dict(categories=[category], images=images,
                       annotations=annotations), f)
    return path


def make_tiny_crowdpose(root: str,
                        num_train: int = 64,
                        num_val: int = 16,
                        size: Sequence[int] = (128, 128),
                        seed: int = 0) -> Dict[str, str]:
    """Write a tiny CrowdPose under ``root`` (e.g. ``data/tiny/crowdpose``).

    Returns the paths written, keyed ``keypoints_train``
    (``annotations/crowdpose_trainval.json``), ``keypoints_val``
    (``annotations/crowdpose_test.json``) and ``images``.
    """
    check_generator_args(num_train, num_val, size, seed)
    rng = np.random.default_rng(seed)
    size = (int(size[0]), int(size[1]))
    train = _write_split(root, SPLIT_FILES[0], num_train, size, rng, 100000)
    val = _write_split(root, SPLIT_FILES[1], num_val, size, rng,
                       100000 + num_train)
    return dict(keypoints_train=train, keypoints_val=val,
                images=osp.join(root, 'images'))
