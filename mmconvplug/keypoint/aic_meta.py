"""AI Challenger (AIC) human keypoints: 14 keypoints, skeleton, flip pairs,
OKS sigmas.

AIC (Wu et al., "AI Challenger: A Large-scale Dataset for Going Deeper in
Image Understanding", arXiv:1711.06475, 2017) labels 14 joints, right side
first. Read here in the COCO layout mmpose converts it to
(``annotations/aic_{train,val}.json``, no ``area`` field: mmpose evaluates
it with ``use_area=False``). Sources:

* names, order and skeleton: mmpose ``configs/_base_/datasets/aic.py``
  (``keypoint_info``, ``skeleton_info``);
* sigmas: the same file's ``sigmas``, which are half the ``delta`` of the
  official evaluation, ``AI_Challenger_2017/Evaluation/keypoint_eval/
  keypoint_eval.py`` (``delta = 2 * [0.01388152, ...]``). pycocotools'
  OKS divides by ``(2 * sigma) ** 2``, i.e. by the official ``delta ** 2``.
"""
from typing import Tuple

from .coco_person_meta import flip_indices_from_names

AIC_KEYPOINT_NAMES: Tuple[str, ...] = (
    'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
    'left_elbow', 'left_wrist', 'right_hip', 'right_knee', 'right_ankle',
    'left_hip', 'left_knee', 'left_ankle', 'head_top', 'neck')

#: Limbs as 0-based index pairs, in mmpose's ``skeleton_info`` order.
AIC_SKELETON: Tuple[Tuple[int, int], ...] = (
    (2, 1), (1, 0), (0, 13), (13, 3), (3, 4), (4, 5), (8, 7), (7, 6), (6, 9),
    (9, 10), (10, 11), (12, 13), (0, 6), (3, 9))

#: mmpose ``aic.py`` ``sigmas`` (= official ``delta`` / 2).
AIC_KEYPOINT_SIGMAS: Tuple[float, ...] = (
    0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144,
    0.03909642, 0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081,
    0.01291456, 0.01236173)

AIC_FLIP_INDICES: Tuple[int, ...] = tuple(
    flip_indices_from_names(AIC_KEYPOINT_NAMES))

AIC_METAINFO = dict(
    classes=('person', ),
    palette=[(220, 20, 60)],
    keypoint_names=AIC_KEYPOINT_NAMES,
    skeleton=AIC_SKELETON,
    flip_indices=AIC_FLIP_INDICES,
    keypoint_sigmas=AIC_KEYPOINT_SIGMAS)
