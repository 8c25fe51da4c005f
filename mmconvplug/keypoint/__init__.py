"""Keypoint R-CNN for MMDetection 3.x (He et al. 2017, detectron2-style).

Importing this package registers, in mmengine's root registries:

* models: ``KeypointRCNN`` (detector), ``KeypointRoIHead``,
  ``KeypointHeatmapHead``, ``KeypointHeatmapLoss``;
* dataset: ``CocoKeypointDataset`` (``person_keypoints_*.json``);
* transforms: ``LoadKeypointAnnotations``, ``KeypointResize``,
  ``KeypointRandomFlip``, ``PackKeypointDetInputs``;
* metric: ``CocoKeypointMetric`` (box AP + keypoint OKS AP);
* visualizer: ``KeypointDetLocalVisualizer``.
"""
from .coco_person_meta import (COCO_PERSON_FLIP_INDICES,
                               COCO_PERSON_KEYPOINT_NAMES,
                               COCO_PERSON_KEYPOINT_SIGMAS,
                               COCO_PERSON_METAINFO, COCO_PERSON_SKELETON,
                               flip_indices_from_names)
from .dataset import CocoKeypointDataset
from .detector import KeypointRCNN
from .heatmap_codec import decode_heatmaps, encode_heatmap_targets
from .keypoint_head import KeypointHeatmapHead
from .loss import KeypointHeatmapLoss
from .metric import CocoKeypointMetric
from .roi_head import KeypointRoIHead
from .transforms import (KeypointRandomFlip, KeypointResize,
                         LoadKeypointAnnotations, PackKeypointDetInputs)
from .visualization import KeypointDetLocalVisualizer

__all__ = [
    'COCO_PERSON_FLIP_INDICES', 'COCO_PERSON_KEYPOINT_NAMES',
    'COCO_PERSON_KEYPOINT_SIGMAS', 'COCO_PERSON_METAINFO',
    'COCO_PERSON_SKELETON', 'flip_indices_from_names', 'CocoKeypointDataset',
    'KeypointRCNN', 'decode_heatmaps', 'encode_heatmap_targets',
    'KeypointHeatmapHead', 'KeypointHeatmapLoss', 'CocoKeypointMetric',
    'KeypointRoIHead', 'KeypointRandomFlip', 'KeypointResize',
    'LoadKeypointAnnotations', 'PackKeypointDetInputs',
    'KeypointDetLocalVisualizer'
]
