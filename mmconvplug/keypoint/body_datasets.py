"""Person-keypoint datasets with K != 17, read from their COCO-style files.

Each is :class:`~mmconvplug.keypoint.CocoKeypointDataset` with its own
``METAINFO`` (names, skeleton, flip indices, OKS sigmas), so a config only
names the type; ``CocoKeypointMetric`` takes the sigmas from the dataset.
Both files come without ``area``; it is filled from the box by mmpose's rule
(:mod:`mmconvplug.keypoint.coco_style`), in the dataset and in the metric.
"""
from mmconvplug.registry import DATASETS

from .aic_meta import AIC_METAINFO
from .crowdpose_meta import CROWDPOSE_METAINFO
from .dataset import CocoKeypointDataset


@DATASETS.register_module()
class CrowdPoseKeypointDataset(CocoKeypointDataset):
    """CrowdPose (Li et al., CVPR 2019): 14 keypoints, the published json
    (``crowdpose_{train,val,test,trainval}.json``) as it is.

    Its ``num_keypoints`` counts the 12 body joints only (not ``top_head`` /
    ``neck``); it is followed as pycocotools and mmpose follow it. The
    metric reports COCO-style OKS AP (all / medium / large); the official
    easy / medium / hard crowd-index split of ``crowdposetools`` is not
    computed.
    """

    METAINFO = CROWDPOSE_METAINFO


@DATASETS.register_module()
class AicKeypointDataset(CocoKeypointDataset):
    """AI Challenger human keypoints (Wu et al. 2017): 14 keypoints, in the
    COCO layout mmpose converts it to (``annotations/aic_{train,val}.json``).
    """

    METAINFO = AIC_METAINFO
