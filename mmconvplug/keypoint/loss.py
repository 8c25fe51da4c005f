"""Per-keypoint spatial softmax cross-entropy (Mask R-CNN keypoint loss)."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmconvplug.registry import MODELS


@MODELS.register_module()
class KeypointHeatmapLoss(nn.Module):
    """Cross-entropy over the S*S cells of each keypoint's heatmap.

    Each (RoI, keypoint) pair is one S*S-way classification whose label is
    the cell holding the ground-truth keypoint (He et al. 2017). Pairs that
    are unlabelled or fall outside the RoI are skipped.

    Args:
        loss_weight: multiplier of the loss.
        normalize_by_visible: divide the summed loss by the number of valid
            keypoints (detectron2's default). When False, divide by
            ``num_rois * num_keypoints`` instead, which weights images with
            few labelled keypoints less.
    """

    def __init__(self, loss_weight: float = 1.0,
                 normalize_by_visible: bool = True) -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(
                f'KeypointHeatmapLoss: loss_weight must be >= 0, got '
                f'{loss_weight}.')
        self.loss_weight = loss_weight
        self.normalize_by_visible = normalize_by_visible

    def forward(self, heatmap_logits: Tensor, targets: Tensor,
                valid: Tensor, avg_factor: Optional[float] = None) -> Tensor:
        """Loss of (N, K, S, S) logits against (N, K) cell indices.

        Args:
            heatmap_logits: (N, K, S, S) raw heatmaps.
            targets: (N, K) long, flat cell index ``y * S + x``.
            valid: (N, K) bool, which pairs count.
            avg_factor: overrides the normaliser when given.
        """
        num_rois, num_keypoints = heatmap_logits.shape[:2]
        flat_logits = heatmap_logits.reshape(num_rois * num_keypoints, -1)
        flat_valid = valid.reshape(-1)
        if not flat_valid.any():
            # Keep the graph connected so every parameter gets a gradient.
            return heatmap_logits.sum() * 0.
        loss = F.cross_entropy(
            flat_logits[flat_valid], targets.reshape(-1)[flat_valid],
            reduction='sum')
        if avg_factor is None:
            avg_factor = (flat_valid.sum().item()
                          if self.normalize_by_visible else flat_valid.numel())
        return self.loss_weight * loss / max(avg_factor, 1)
