"""The visualizer draws skeletons where the keypoints are."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmconvplug.keypoint import (
    COCO_PERSON_METAINFO,
    KeypointDetLocalVisualizer,
)


def test_pred_keypoints_and_limbs_are_drawn():
    image = np.full((120, 100, 3), 40, dtype=np.uint8)
    keypoints = torch.stack(
        [torch.full((17, ), 50.0),
         torch.linspace(15, 105, 17)], dim=1)[None]
    scores = torch.ones(1, 17)
    scores[0, 16] = 0.0  # below the threshold: not drawn
    keypoints[0, 16] = torch.tensor([90.0, 10.0])
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[30.0, 10.0, 70.0, 110.0]]),
        scores=torch.tensor([0.9]),
        labels=torch.tensor([0]),
        keypoints=keypoints,
        keypoint_scores=scores)

    visualizer = KeypointDetLocalVisualizer(
        name='kpt_vis_test', keypoint_score_thr=0.5, keypoint_radius=2,
        bbox_color=(0, 0, 255))
    visualizer.dataset_meta = dict(COCO_PERSON_METAINFO)
    visualizer.add_datasample(
        'person', image, sample, draw_gt=False, pred_score_thr=0.3)
    drawn = visualizer.get_image()

    assert drawn.shape == image.shape
    for x, y in keypoints[0, :16].round().long().tolist():
        assert (drawn[y, x] != image[y, x]).any(), (x, y)
    # The keypoint whose score is under the threshold stays undrawn.
    assert (drawn[10, 90] == image[10, 90]).all()


def test_gt_keypoints_follow_visibility():
    image = np.full((60, 60, 3), 40, dtype=np.uint8)
    sample = DetDataSample()
    keypoints = torch.zeros(1, 17, 2)
    keypoints[0, 0] = torch.tensor([30.0, 30.0])
    visible = torch.zeros(1, 17)
    visible[0, 0] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[5.0, 5.0, 55.0, 55.0]]),
        labels=torch.tensor([0]), keypoints=keypoints,
        keypoints_visible=visible)
    visualizer = KeypointDetLocalVisualizer(name='kpt_vis_gt_test')
    visualizer.dataset_meta = dict(COCO_PERSON_METAINFO)
    visualizer.add_datasample('gt', image, sample, draw_pred=False)
    drawn = visualizer.get_image()
    assert (drawn[30, 30] != 40).any()
