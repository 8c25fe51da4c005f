"""Keypoint R-CNN for MMDetection 3.x (He et al. 2017, detectron2-style).

Importing this package registers, in mmengine's root registries:

* models: ``KeypointRCNN`` (detector), ``KeypointRoIHead``,
  ``KeypointHeatmapHead``, ``KeypointHeatmapLoss``;
* datasets: ``CocoKeypointDataset`` (COCO-style files, K from the
  metainfo; COCO persons' 17 by default), ``CrowdPoseKeypointDataset`` and
  ``AicKeypointDataset`` (14 keypoints each);
* transforms: ``LoadKeypointAnnotations``, ``KeypointResize``,
  ``KeypointRandomFlip``, ``PackKeypointDetInputs``;
* metric: ``CocoKeypointMetric`` (box / mask AP + keypoint OKS AP);
* visualizer: ``KeypointDetLocalVisualizer``.
"""
from .aic_meta import (
    AIC_FLIP_INDICES,
    AIC_KEYPOINT_NAMES,
    AIC_KEYPOINT_SIGMAS,
    AIC_METAINFO,
    AIC_SKELETON,
)
from .body_datasets import AicKeypointDataset, CrowdPoseKeypointDataset
from .coco_person_meta import (
    COCO_PERSON_FLIP_INDICES,
    COCO_PERSON_KEYPOINT_NAMES,
    COCO_PERSON_KEYPOINT_SIGMAS,
    COCO_PERSON_METAINFO,
    COCO_PERSON_SKELETON,
    flip_indices_from_names,
)
from .coco_style import AREA_FROM_BOX_FACTOR, area_from_box
from .crowdpose_meta import (
    CROWDPOSE_COUNTED_KEYPOINTS,
    CROWDPOSE_FLIP_INDICES,
    CROWDPOSE_KEYPOINT_NAMES,
    CROWDPOSE_KEYPOINT_SIGMAS,
    CROWDPOSE_METAINFO,
    CROWDPOSE_SKELETON,
)
from .dataset import CocoKeypointDataset
from .detector import KeypointRCNN
from .heatmap_codec import decode_heatmaps, encode_heatmap_targets
from .keypoint_counts import KeypointCountError, check_keypoint_counts
from .keypoint_head import KeypointHeatmapHead
from .loss import KeypointHeatmapLoss
from .metric import CocoKeypointMetric
from .roi_head import KeypointRoIHead
from .transforms import (
    KeypointRandomFlip,
    KeypointResize,
    LoadKeypointAnnotations,
    PackKeypointDetInputs,
)
from .visualization import KeypointDetLocalVisualizer

__all__ = [
    'AIC_FLIP_INDICES', 'AIC_KEYPOINT_NAMES', 'AIC_KEYPOINT_SIGMAS',
    'AIC_METAINFO', 'AIC_SKELETON', 'AicKeypointDataset',
    'CrowdPoseKeypointDataset', 'COCO_PERSON_FLIP_INDICES',
    'COCO_PERSON_KEYPOINT_NAMES', 'COCO_PERSON_KEYPOINT_SIGMAS',
    'COCO_PERSON_METAINFO', 'COCO_PERSON_SKELETON', 'flip_indices_from_names',
    'AREA_FROM_BOX_FACTOR', 'area_from_box', 'CROWDPOSE_COUNTED_KEYPOINTS',
    'CROWDPOSE_FLIP_INDICES', 'CROWDPOSE_KEYPOINT_NAMES',
    'CROWDPOSE_KEYPOINT_SIGMAS', 'CROWDPOSE_METAINFO', 'CROWDPOSE_SKELETON',
    'CocoKeypointDataset', 'KeypointRCNN', 'decode_heatmaps',
    'encode_heatmap_targets', 'KeypointCountError', 'check_keypoint_counts',
    'KeypointHeatmapHead', 'KeypointHeatmapLoss', 'CocoKeypointMetric',
    'KeypointRoIHead', 'KeypointRandomFlip', 'KeypointResize',
    'LoadKeypointAnnotations', 'PackKeypointDetInputs',
    'KeypointDetLocalVisualizer'
]
