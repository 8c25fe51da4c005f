"""The shipped Keypoint R-CNN configs load, build and predict keypoints."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

CONFIG_DIR = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'keypoint_rcnn')
R50 = 'keypoint-rcnn_r50_fpn_1x_coco.py'
VARIANTS = {
    'keypoint-rcnn_r50-doconv_fpn_1x_coco.py': 'DOConv',
    'keypoint-rcnn_scnet50_fpn_1x_coco.py': 'SCResNet',
}


def _config(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def test_r50_config_describes_a_keypoint_rcnn():
    cfg = _config(R50)
    assert cfg.model.type == 'KeypointRCNN'
    # The stock ImageNet init (not downloaded here: models below are built
    # without init_weights()).
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='torchvision://resnet50')
    head = cfg.model.roi_head
    assert head.bbox_head.num_classes == 1
    assert head.keypoint_roi_extractor.roi_layer.output_size == 14
    assert head.keypoint_head.num_convs == 8
    assert cfg.train_dataloader.dataset.ann_file.endswith(
        'person_keypoints_train2017.json')
    assert cfg.val_evaluator.metric == ['bbox', 'keypoints']


def test_r50_model_predicts_keypoints_in_the_original_scale():
    cfg = _config(R50)
    # Few RoIs: the 8 x conv3x3(512) keypoint head is heavy on a CPU.
    cfg.model.test_cfg.rpn.max_per_img = 20
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.model.test_cfg.rcnn.max_per_img = 1
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).eval()  # PyTorch's default init
    sample = DetDataSample(metainfo=dict(
        img_shape=(64, 96), ori_shape=(32, 48), scale_factor=(2.0, 2.0),
        pad_shape=(64, 96), batch_input_shape=(64, 96)))
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8)],
             data_samples=[sample]), False)
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    assert pred.keypoints.shape == (len(pred), 17, 2)
    assert pred.keypoint_scores.shape == (len(pred), 17)
    assert len(pred) > 0
    assert (pred.keypoints[..., 0] <= 48 + 1e-3).all()
    assert (pred.keypoints[..., 1] <= 32 + 1e-3).all()


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_variant_configs_build(name):
    cfg = _config(name)
    init_default_scope('mmdet')
    needed = VARIANTS[name]
    if MODELS.get(needed) is None:
        pytest.skip(f'{needed} is not registered in this checkout yet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'KeypointRCNN'
    if needed == 'DOConv':
        kinds = {type(m).__name__ for m in model.roi_head.keypoint_head.
                 modules()}
        assert 'DOConv' in kinds


def _tiny_model():
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_coco.py')
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def _sample_with_keypoints():
    from mmengine.structures import InstanceData
    sample = DetDataSample(metainfo=dict(
        img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0),
        pad_shape=(64, 64), batch_input_shape=(64, 64)))
    keypoints = torch.rand(2, 17, 2) * 30 + torch.tensor([[[5.0, 10.0]],
                                                          [[30.0, 20.0]]])
    visible = torch.ones(2, 17)
    visible[1] = 0  # a person without keypoints: a box, no keypoint loss
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[5.0, 10.0, 35.0, 40.0],
                             [30.0, 20.0, 60.0, 50.0]]),
        labels=torch.zeros(2, dtype=torch.long),
        keypoints=keypoints, keypoints_visible=visible)
    sample.ignored_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    return sample


def test_tiny_model_trains_on_keypoints_and_exposes_heatmaps():
    model = _tiny_model()
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
             data_samples=[_sample_with_keypoints()]), True)
    losses = model(**data, mode='loss')
    assert 'loss_keypoint' in losses
    assert torch.isfinite(losses['loss_keypoint'])
    losses['loss_keypoint'].backward()
    deconv = model.roi_head.keypoint_head.heatmap_deconv
    assert deconv.weight.grad is not None and deconv.weight.grad.abs().sum(
    ) > 0

    model.eval()
    with torch.no_grad():
        outputs = model(**data, mode='tensor')
    heatmaps = outputs[-1][-1]  # (rpn outs, roi head outs)[-1]: heatmaps
    assert heatmaps.shape[1:] == (17, 56, 56)


def test_keypoint_roi_head_needs_its_parts():
    cfg = _config('keypoint-rcnn_r18_fpn_tiny_coco.py')
    init_default_scope('mmdet')
    roi_head = cfg.model.roi_head
    roi_head.keypoint_head = None
    with pytest.raises(ValueError, match='keypoint_head'):
        MODELS.build(roi_head)
