"""Heatmap targets and decoding: a GT keypoint survives encode -> decode."""
import torch

from mmconvplug.keypoint import decode_heatmaps, encode_heatmap_targets

SIZE = 56


def _one_hot_logits(targets: torch.Tensor, size: int) -> torch.Tensor:
    """Heatmaps that are 20 at the target cell and 0 elsewhere."""
    num_rois, num_kpts = targets.shape
    logits = torch.zeros(num_rois, num_kpts, size * size)
    logits.scatter_(2, targets[..., None], 20.0)
    return logits.view(num_rois, num_kpts, size, size)


def test_roundtrip_recovers_keypoint_within_one_cell():
    rois = torch.tensor([[10.0, 20.0, 122.0, 244.0],
                         [0.0, 0.0, 57.0, 33.5]])
    gen = torch.Generator().manual_seed(0)
    rel = torch.rand(2, 17, 2, generator=gen) * 0.98 + 0.01
    size_wh = rois[:, 2:] - rois[:, :2]
    keypoints = rois[:, None, :2] + rel * size_wh[:, None]
    visible = torch.ones(2, 17)

    targets, valid = encode_heatmap_targets(keypoints, visible, rois, SIZE)
    assert valid.all()
    decoded, scores = decode_heatmaps(_one_hot_logits(targets, SIZE), rois)

    # One heatmap cell in image pixels; a RoI smaller than the heatmap is
    # decoded on its own pixel grid, so there the bound is one pixel.
    cell = torch.clamp(size_wh / SIZE, min=1.0)
    error = (decoded - keypoints).abs()
    assert (error <= cell[:, None] + 1e-4).all(), error.max()
    assert ((scores >= 0) & (scores <= 1.0)).all()


def test_cell_index_is_row_major_and_edges_belong_to_last_cell():
    rois = torch.tensor([[0.0, 0.0, 56.0, 56.0]])
    keypoints = torch.tensor([[[3.5, 7.2], [56.0, 56.0], [0.0, 55.9]]])
    targets, valid = encode_heatmap_targets(keypoints, torch.ones(1, 3), rois,
                                            SIZE)
    assert valid.all()
    assert targets.tolist() == [[7 * SIZE + 3, SIZE * SIZE - 1,
                                 55 * SIZE + 0]]


def test_invisible_and_outside_keypoints_are_not_valid():
    rois = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    keypoints = torch.tensor([[[15.0, 15.0], [15.0, 15.0], [25.0, 15.0],
                               [15.0, 9.0]]])
    visible = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    targets, valid = encode_heatmap_targets(keypoints, visible, rois, SIZE)
    assert valid.tolist() == [[True, False, False, False]]
    assert targets[0, 1:].tolist() == [0, 0, 0]


def test_decode_of_no_rois_is_empty():
    keypoints, scores = decode_heatmaps(
        torch.zeros(0, 17, SIZE, SIZE), torch.zeros(0, 4))
    assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)
