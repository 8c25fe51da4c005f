"""Keypoints <-> RoI heatmaps: the training target and the test-time decode.

Coordinates are continuous image coordinates (pixel ``i`` covers
``[i, i + 1)``), as for boxes. A RoI ``(x1, y1, x2, y2)`` is split into an
``S x S`` grid; a keypoint's target is the index of the cell it falls in
(Mask R-CNN, He et al. 2017, Sec. 5; the same discretisation as detectron2's
``keypoints_to_heatmap``). Decoding upsamples each heatmap to the RoI's size
in pixels, takes the arg-max and returns the centre of that pixel.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def encode_heatmap_targets(keypoints: Tensor, keypoints_visible: Tensor,
                           rois: Tensor,
                           heatmap_size: int) -> Tuple[Tensor, Tensor]:
    """Turn keypoints into flat cell indices of a ``heatmap_size**2`` grid.

    Args:
        keypoints: (N, K, 2) keypoint ``x, y`` in the image.
        keypoints_visible: (N, K) > 0 where the keypoint is labelled.
        rois: (N, 4) boxes ``x1, y1, x2, y2`` the heatmaps cover.
        heatmap_size: S, the side of the square heatmap.

    Returns:
        ``targets`` (N, K) long cell index ``y * S + x`` (0 where invalid) and
        ``valid`` (N, K) bool: labelled and inside the RoI. Only valid
        keypoints take part in the loss.
    """
    if rois.numel() == 0:
        empty = keypoints.new_zeros(keypoints.shape[:2])
        return empty.long(), empty.bool()
    x1, y1, x2, y2 = (rois[:, i:i + 1] for i in range(4))
    scale_x = heatmap_size / (x2 - x1).clamp(min=1e-6)
    scale_y = heatmap_size / (y2 - y1).clamp(min=1e-6)
    x = keypoints[..., 0]
    y = keypoints[..., 1]
    cell_x = ((x - x1) * scale_x).floor().long()
    cell_y = ((y - y1) * scale_y).floor().long()
    # A keypoint exactly on the right/bottom edge belongs to the last cell.
    cell_x[x == x2.expand_as(x)] = heatmap_size - 1
    cell_y[y == y2.expand_as(y)] = heatmap_size - 1
    inside = (cell_x >= 0) & (cell_y >= 0) & (cell_x < heatmap_size) & (
        cell_y < heatmap_size)
    valid = inside & (keypoints_visible > 0)
    targets = (cell_y * heatmap_size + cell_x) * valid.long()
    return targets, valid


def decode_heatmaps(heatmaps: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
    """Keypoint locations and scores from per-RoI heatmap logits.

    Each (K, S, S) map is bicubically resized to the RoI's size in pixels
    (rounded up), the arg-max pixel's centre is mapped back into the image,
    and its score is the spatial-softmax probability of that location
    (normalised over the S x S grid, so it lies in [0, 1]).

    Args:
        heatmaps: (N, K, S, S) logits.
        rois: (N, 4) boxes ``x1, y1, x2, y2`` the heatmaps cover.

    Returns:
        ``keypoints`` (N, K, 2) in the boxes' coordinate frame and
        ``scores`` (N, K).
    """
    num_rois, num_keypoints = heatmaps.shape[:2]
    keypoints = heatmaps.new_zeros((num_rois, num_keypoints, 2))
    scores = heatmaps.new_zeros((num_rois, num_keypoints))
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    keypoint_ids = torch.arange(num_keypoints, device=heatmaps.device)
    for i in range(num_rois):
        out_h, out_w = int(heights[i].ceil()), int(widths[i].ceil())
        roi_map = F.interpolate(
            heatmaps[i:i + 1], size=(out_h, out_w), mode='bicubic',
            align_corners=False)[0]
        flat = roi_map.reshape(num_keypoints, -1)
        position = flat.argmax(dim=1)
        # Softmax over the original grid, evaluated at the resized maximum.
        log_norm = torch.logsumexp(
            heatmaps[i].reshape(num_keypoints, -1), dim=1)
        px = position % out_w
        py = torch.div(position, out_w, rounding_mode='floor')
        keypoints[i, :, 0] = (px.float() + 0.5) * (
            widths[i] / out_w) + rois[i, 0]
        keypoints[i, :, 1] = (py.float() + 0.5) * (
            heights[i] / out_h) + rois[i, 1]
        scores[i] = (roi_map[keypoint_ids, py, px] - log_norm).exp().clamp(
            max=1.0)
    return keypoints, scores
