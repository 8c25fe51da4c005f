"""The K != 17 configs (CrowdPose, AIC) and the masks + keypoints config
load, build and predict what they say; ``check_config`` stops a model whose
K differs from its dataset's before anything is built."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.structures import InstanceData

from mmconvplug.apis import check_config
from mmconvplug.keypoint import KeypointCountError

CONFIG_DIR = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'keypoint_rcnn')
K14 = {
    'keypoint-rcnn_r50_fpn_1x_crowdpose.py': (
        'CrowdPoseKeypointDataset', 'crowdpose_trainval.json',
        'crowdpose_test.json'),
    'keypoint-rcnn_r50-doconv_fpn_1x_crowdpose.py': (
        'CrowdPoseKeypointDataset', 'crowdpose_trainval.json',
        'crowdpose_test.json'),
    'keypoint-rcnn_r50_fpn_1x_aic.py': (
        'AicKeypointDataset', 'aic_train.json', 'aic_val.json'),
    'keypoint-rcnn_r50-doconv_fpn_1x_aic.py': (
        'AicKeypointDataset', 'aic_train.json', 'aic_val.json'),
    'keypoint-rcnn_r18_fpn_tiny_crowdpose.py': (
        'CrowdPoseKeypointDataset', 'crowdpose_trainval.json',
        'crowdpose_test.json'),
}
MASKS = ('mask-keypoint-rcnn_r50_fpn_1x_coco.py',
         'mask-keypoint-rcnn_r18_fpn_tiny_coco.py')


def _config(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def _sample(size=64, num_keypoints=17, masks=False):
    sample = DetDataSample(metainfo=dict(
        img_shape=(size, size), ori_shape=(size, size),
        scale_factor=(1.0, 1.0), pad_shape=(size, size),
        batch_input_shape=(size, size)))
    boxes = torch.tensor([[5.0, 10.0, 35.0, 50.0], [30.0, 20.0, 60.0, 60.0]])
    gt = InstanceData(
        bboxes=boxes, labels=torch.zeros(2, dtype=torch.long),
        keypoints=torch.rand(2, num_keypoints, 2) * 25 + boxes[:, None, :2],
        keypoints_visible=torch.ones(2, num_keypoints))
    if masks:
        from mmdet.structures.mask import BitmapMasks
        bitmap = torch.zeros(2, size, size, dtype=torch.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
            bitmap[i, y0:y1, x0:x1] = 1
        gt.masks = BitmapMasks(bitmap.numpy(), size, size)
    sample.gt_instances = gt
    sample.ignored_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    return sample


@pytest.mark.parametrize('name', sorted(K14))
def test_k14_configs_name_their_dataset_files_and_14_heatmaps(name):
    cfg = _config(name)
    dataset_type, train_file, val_file = K14[name]
    assert cfg.model.roi_head.keypoint_head.num_keypoints == 14
    assert cfg.train_dataloader.dataset.type == dataset_type
    assert cfg.train_dataloader.dataset.ann_file.endswith(train_file)
    assert cfg.val_dataloader.dataset.type == dataset_type
    assert cfg.val_evaluator.ann_file.endswith(val_file)
    assert cfg.val_evaluator.type == 'CocoKeypointMetric'
    if 'doconv' in name:
        assert cfg.model.backbone.conv_cfg == dict(type='DOConv')
        assert cfg.model.roi_head.keypoint_head.conv_cfg == dict(
            type='DOConv')


def test_tiny_crowdpose_model_trains_and_predicts_14_keypoints():
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_crowdpose.py')
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
             data_samples=[_sample(num_keypoints=14)]), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_keypoint'])
    model.eval()
    model.test_cfg.rcnn.score_thr = 0.0
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    assert len(pred) > 0
    assert pred.keypoints.shape == (len(pred), 14, 2)
    assert pred.keypoint_scores.shape == (len(pred), 14)


def test_a_17_keypoint_model_refuses_14_keypoint_ground_truth():
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_coco.py')
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
             data_samples=[_sample(num_keypoints=14)]), True)
    with pytest.raises(KeypointCountError,
                       match='num_keypoints=17 heatmaps, but the ground '
                       'truth has 14'):
        model(**data, mode='loss')


def test_check_config_names_the_four_lengths_before_building():
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_crowdpose.py')
    cfg.model.roi_head.keypoint_head.num_keypoints = 17
    with pytest.raises(KeypointCountError) as error:
        check_config(cfg)  # before the data paths: none exist here
    message = str(error.value)
    assert 'train_dataloader.dataset (CrowdPoseKeypointDataset)' in message
    for part in ('K (model.roi_head.keypoint_head.num_keypoints): 17',
                 'keypoint_names: 14', 'flip_indices: 14',
                 'keypoint_sigmas: 14'):
        assert part in message


def test_check_config_sees_the_configs_metainfo_and_metric_sigmas():
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_coco.py')
    cfg.val_evaluator.keypoint_sigmas = [0.05] * 14
    with pytest.raises(KeypointCountError,
                       match=r'keypoint_sigmas \(CocoKeypointMetric '
                       r'argument\): 14'):
        check_config(cfg)
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_coco.py')
    cfg.test_dataloader.dataset.metainfo = dict(
        keypoint_names=[f'k{i}' for i in range(14)])
    with pytest.raises(KeypointCountError, match='keypoint_names: 14'):
        check_config(cfg, phase='test')


@pytest.mark.parametrize('name', MASKS)
def test_mask_keypoint_configs_evaluate_three_aps(name):
    cfg = _config(name)
    assert cfg.val_evaluator.metric == ['bbox', 'segm', 'keypoints']
    assert cfg.test_evaluator.metric == ['bbox', 'segm', 'keypoints']
    assert cfg.model.roi_head.mask_head.num_classes == 1
    load = cfg.train_dataloader.dataset.pipeline[1]
    assert load.type == 'LoadKeypointAnnotations' and load.with_mask


def test_tiny_mask_keypoint_model_trains_both_and_predicts_all_three():
    cfg = _config('mask-keypoint-rcnn_r18_fpn_tiny_coco.py')
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
             data_samples=[_sample(masks=True)]), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_mask'])
    assert torch.isfinite(losses['loss_keypoint'])
    model.eval()
    model.test_cfg.rcnn.score_thr = 0.0
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    assert len(pred) > 0
    assert pred.masks.shape == (len(pred), 64, 64)
    assert pred.keypoints.shape == (len(pred), 17, 2)
    assert pred.keypoint_scores.shape == (len(pred), 17)
