"""``KeypointRCNN``: a two-stage detector whose RoI head predicts keypoints."""
from mmdet.models.detectors import TwoStageDetector
from mmengine.config import ConfigDict

from mmconvplug.registry import MODELS


@MODELS.register_module()
class KeypointRCNN(TwoStageDetector):
    """Keypoint R-CNN (He et al. 2017): Faster R-CNN + ``KeypointRoIHead``.

    Same arguments as mmdet's ``FasterRCNN``; it exists so configs and logs
    name the model for what it is. Nothing in the forward pass differs:
    ``TwoStageDetector`` already hands the RoI head's ``keypoints`` /
    ``keypoint_scores`` on to ``pred_instances``.
    """

    def __init__(self,
                 backbone: ConfigDict,
                 rpn_head: ConfigDict,
                 roi_head: ConfigDict,
                 train_cfg: ConfigDict,
                 test_cfg: ConfigDict,
                 neck: ConfigDict = None,
                 data_preprocessor: ConfigDict = None,
                 init_cfg: ConfigDict = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            data_preprocessor=data_preprocessor)
