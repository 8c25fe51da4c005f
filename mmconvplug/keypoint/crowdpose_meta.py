"""CrowdPose metadata: 14 keypoints, skeleton, flip pairs and OKS sigmas.

CrowdPose (Li et al., "CrowdPose: Efficient Crowded Scenes Pose Estimation
and A New Benchmark", CVPR 2019; github.com/Jeff-sjtu/CrowdPose) labels 12
body joints in COCO's order (shoulders to ankles) plus the top of the head
and the neck. Sources:

* names and order: mmpose ``configs/_base_/datasets/crowdpose.py`` and the
  ``CrowdPoseDataset`` docstring (``top_head``; the published json's
  category calls it ``head``: names are not read from the file);
* sigmas: the official toolkit, ``crowdpose-api/PythonAPI/crowdposetools/
  cocoeval.py`` (``computeOks``: ``[.79, .79, .72, .72, .62, .62, 1.07,
  1.07, .87, .87, .89, .89, .79, .79] / 10``), the same numbers as mmpose's
  ``crowdpose.py`` ``sigmas``;
* skeleton: mmpose ``crowdpose.py`` ``skeleton_info`` (15 limbs).
"""
from typing import Tuple

from .coco_person_meta import flip_indices_from_names

CROWDPOSE_KEYPOINT_NAMES: Tuple[str, ...] = (
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle', 'top_head', 'neck')

#: Limbs as 0-based index pairs, in mmpose's ``skeleton_info`` order.
CROWDPOSE_SKELETON: Tuple[Tuple[int, int], ...] = (
    (10, 8), (8, 6), (11, 9), (9, 7), (6, 7), (0, 6), (1, 7), (0, 1), (0, 2),
    (1, 3), (2, 4), (3, 5), (12, 13), (1, 13), (0, 13))

#: crowdposetools ``COCOeval.computeOks`` (official toolkit).
CROWDPOSE_KEYPOINT_SIGMAS: Tuple[float, ...] = (
    .079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089,
    .079, .079)

#: ``top_head`` and ``neck`` have no mirrored partner: they map to
#: themselves.
CROWDPOSE_FLIP_INDICES: Tuple[int, ...] = tuple(
    flip_indices_from_names(CROWDPOSE_KEYPOINT_NAMES))

#: The joints CrowdPose's own ``num_keypoints`` field counts: the 12 body
#: joints, not ``top_head`` / ``neck`` (in the published file a person with
#: 7 / 12 / 14 labelled joints has ``num_keypoints`` 5 / 10 / 12).
CROWDPOSE_COUNTED_KEYPOINTS: Tuple[int, ...] = tuple(range(12))

CROWDPOSE_METAINFO = dict(
    classes=('person', ),
    palette=[(220, 20, 60)],
    keypoint_names=CROWDPOSE_KEYPOINT_NAMES,
    skeleton=CROWDPOSE_SKELETON,
    flip_indices=CROWDPOSE_FLIP_INDICES,
    keypoint_sigmas=CROWDPOSE_KEYPOINT_SIGMAS)
