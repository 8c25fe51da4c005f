"""Heatmap head and loss: shapes, loss behaviour, rescaling, bad settings."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmconvplug.keypoint import (
    KeypointHeatmapHead,
    KeypointHeatmapLoss,
    encode_heatmap_targets,
)


def _small_head(**kwargs):
    head = KeypointHeatmapHead(
        num_keypoints=5, in_channels=8, num_convs=2, conv_out_channels=16,
        roi_feat_size=7, **kwargs)
    head.init_weights()
    return head


def test_head_output_is_four_times_the_roi_size():
    head = _small_head()
    out = head(torch.randn(3, 8, 7, 7))
    assert out.shape == (3, 5, 28, 28)


def test_loss_is_zero_free_without_labels_and_falls_when_fitting():
    loss_fn = KeypointHeatmapLoss()
    logits = torch.zeros(2, 5, 28, 28, requires_grad=True)
    targets = torch.randint(0, 28 * 28, (2, 5))
    nothing = torch.zeros(2, 5, dtype=torch.bool)
    empty = loss_fn(logits, targets, nothing)
    empty.backward()
    assert empty.item() == 0 and logits.grad is not None

    valid = torch.ones(2, 5, dtype=torch.bool)
    uniform = loss_fn(logits, targets, valid)
    assert uniform.item() == pytest.approx(torch.log(torch.tensor(784.)))
    peaked = torch.zeros(2, 5, 784)
    peaked.scatter_(2, targets[..., None], 10.0)
    assert loss_fn(peaked.view(2, 5, 28, 28), targets, valid) < uniform


def test_predict_rescales_keypoints_to_the_original_image():
    head = _small_head()
    rois = torch.tensor([[8.0, 8.0, 64.0, 92.0]])
    keypoints = torch.tensor([[[20.0, 30.0], [40.0, 50.0], [60.0, 90.0],
                               [10.0, 10.0], [33.0, 77.0]]])
    targets, _ = encode_heatmap_targets(keypoints, torch.ones(1, 5), rois, 28)
    logits = torch.zeros(1, 5, 28 * 28)
    logits.scatter_(2, targets[..., None], 20.0)
    results = [InstanceData(bboxes=rois.clone())]
    out = head.predict_by_feat((logits.view(1, 5, 28, 28), ), results,
                               [dict(scale_factor=(2.0, 4.0))], rescale=True)
    cell = (rois[0, 2:] - rois[0, :2]) / 28
    expected = keypoints / torch.tensor([2.0, 4.0])
    error = (out[0].keypoints - expected).abs()
    assert (error <= cell / torch.tensor([2.0, 4.0]) + 1e-4).all()
    assert out[0].keypoint_scores.shape == (1, 5)


def test_bad_head_settings_are_explained():
    with pytest.raises(ValueError, match='num_keypoints'):
        KeypointHeatmapHead(num_keypoints=0)
    with pytest.raises(ValueError, match='num_convs'):
        KeypointHeatmapHead(num_convs=-1)
    with pytest.raises(ValueError, match='loss_weight'):
        KeypointHeatmapLoss(loss_weight=-1)
