"""mmdet's ``SingleRoIExtractor`` in a form a trace keeps whole.

mmdet 3.3's extractor loops over the FPN levels and skips a level with no
RoI in Python (``if inds.numel() > 0``), so a trace bakes in which levels
the example RoIs used. :class:`TraceableRoIExtractor` pools every RoI from
every level and keeps, per RoI, the level mmdet's own
``map_roi_levels`` picks (a 0/1 mask; the sum adds exact zeros), so it
equals the stock extractor for any RoIs while the graph stays the same for
all of them. It reuses the stock module's RoI layers and level mapping.
"""
import torch
from torch import nn


class TraceableRoIExtractor(nn.Module):
    """A trace-safe view of an mmdet ``SingleRoIExtractor``.

    Args:
        extractor (nn.Module): the stock ``SingleRoIExtractor``.

    Raises:
        ValueError: ``extractor`` is another extractor type (e.g.
            ``GenericRoIExtractor``, which aggregates levels its own way).
    """

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
        if type(extractor) is not SingleRoIExtractor:
            raise ValueError(
                f'{type(extractor).__name__} is not exported: the RoI graphs '
                "know mmdet's SingleRoIExtractor (Faster / Mask / Keypoint "
                'R-CNN with FPN).')
        self.extractor = extractor

    def forward(self, feats, rois: torch.Tensor) -> torch.Tensor:
        """RoI features ``(K, C, h, w)`` of ``rois`` ``(K, 5)`` from the
        levels ``feats`` (each ``(N, C, H_i, W_i)``)."""
        extractor = self.extractor
        rois = rois.type_as(feats[0])
        num_levels = len(feats)
        if num_levels == 1:
            return extractor.roi_layers[0](feats[0], rois)
        levels = extractor.map_roi_levels(rois, num_levels)
        out = None
        for i in range(num_levels):
            keep = (levels == i).to(feats[0].dtype).view(-1, 1, 1, 1)
            pooled = extractor.roi_layers[i](feats[i], rois) * keep
            out = pooled if out is None else out + pooled
        return out
