"""Published COCO-style keypoint files as they are: the fields they may lack.

COCO's ``person_keypoints_*.json`` gives every annotation an ``area`` (the
mask area) and a ``num_keypoints``. CrowdPose and AIC (in mmpose's COCO
layout) have no ``area``; CrowdPose's ``num_keypoints`` counts only its 12
body joints. mmdet's ``CocoDataset`` needs ``area`` (``KeyError`` without
it), and pycocotools' ``COCOeval`` reads ``area`` (area ranges, OKS scale)
and ``num_keypoints`` (which persons to ignore). One rule fills them, used
by :class:`~mmconvplug.keypoint.CocoKeypointDataset` before parsing and by
:class:`~mmconvplug.keypoint.CocoKeypointMetric` on the annotations it
evaluates, so training data and evaluation agree:

* ``area`` (only where absent): mmpose's rule for files without it
  (``BaseCocoStyleDataset.parse_data_info`` in
  ``mmpose/datasets/datasets/base/base_coco_style_dataset.py``, used for
  ``CrowdPoseDataset`` / ``AicDataset``): the box clipped to the image
  (``[0, width - 1] x [0, height - 1]``), ``area = max(1, w * h * 0.53)``.
  The official CrowdPose toolkit scores OKS with the same ``0.53 * w * h``
  (``crowdposetools/cocoeval.py``).
* ``num_keypoints``: the file's field where present, as pycocotools (its
  ignore flag) and mmpose read it, even where it disagrees with the
  visibility flags; where absent, the labelled joints (``v > 0``), COCO's
  definition of the field. (mmpose counts non-zero coordinates instead: the
  same number when unlabelled joints are stored as ``0, 0, 0``.)
"""
from typing import Sequence

import numpy as np

#: mmpose's (and crowdposetools') box-to-area factor for files without
#: ``area``.
AREA_FROM_BOX_FACTOR = 0.53


def area_from_box(bbox: Sequence[float], img_width: float,
                  img_height: float) -> float:
    """The ``area`` of an annotation that has none: mmpose's rule.

    Args:
        bbox: COCO ``[x, y, w, h]``.
        img_width, img_height: the image size (the box is clipped to it).

    Returns:
        ``max(1, w' * h' * 0.53)`` for the clipped box ``w' x h'``.
    """
    x, y, w, h = (float(v) for v in bbox[:4])
    x1, x2 = np.clip([x, x + w], 0, img_width - 1)
    y1, y2 = np.clip([y, y + h], 0, img_height - 1)
    return float(max((x2 - x1) * (y2 - y1) * AREA_FROM_BOX_FACTOR, 1.0))


def labelled_keypoints(ann: dict) -> int:
    """Joints with ``v > 0`` in a COCO ``keypoints`` list (0 without one)."""
    raw = ann.get('keypoints') or []
    return int(np.count_nonzero(np.asarray(raw, dtype=np.float64)[2::3] > 0))


def complete_annotation(ann: dict, img_info: dict) -> dict:
    """``ann`` with ``area`` and ``num_keypoints`` where it lacks them.

    Args:
        ann: one COCO annotation (not modified).
        img_info: its image's entry (``width``, ``height``).

    Returns:
        A copy when something was added, else ``ann`` itself. Present
        fields are never changed.
    """
    missing_area = 'area' not in ann and 'bbox' in ann
    missing_count = 'num_keypoints' not in ann
    if not (missing_area or missing_count):
        return ann
    ann = dict(ann)
    if missing_area:
        ann['area'] = area_from_box(ann['bbox'], img_info['width'],
                                    img_info['height'])
    if missing_count:
        ann['num_keypoints'] = labelled_keypoints(ann)
    return ann
