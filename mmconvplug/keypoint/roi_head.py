"""RoI head of Keypoint R-CNN: mmdet's ``StandardRoIHead`` + a keypoint branch.

Training: box branch as usual; the keypoint branch pools ``14 x 14``
features of the *positive* sampled RoIs, predicts heatmaps and is trained
with the spatial-softmax loss against each RoI's matched ground truth.
Testing: detected boxes (network-input scale) -> pooled features ->
heatmaps -> keypoints, rescaled to the original image like mmdet's mask
branch does. A mask branch may be present too (Mask + Keypoint R-CNN).
"""
from typing import List, Optional, Tuple

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmengine.structures import InstanceData
from torch import Tensor

from mmconvplug.registry import MODELS


@MODELS.register_module()
class KeypointRoIHead(StandardRoIHead):
    """``StandardRoIHead`` with a keypoint heatmap branch.

    Args:
        keypoint_roi_extractor: RoI extractor of the keypoint branch
            (``SingleRoIExtractor`` with ``RoIAlign`` 14x14 in the paper).
        keypoint_head: the heatmap head (``KeypointHeatmapHead``).
        **kwargs: everything ``StandardRoIHead`` takes (``bbox_head``,
            ``mask_head``, ``train_cfg``, ``test_cfg`` ...).

    Predictions gain ``keypoints`` (N, K, 2) and ``keypoint_scores`` (N, K).
    """

    def __init__(self,
                 keypoint_roi_extractor: Optional[dict] = None,
                 keypoint_head: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if keypoint_head is None:
            raise ValueError(
                'KeypointRoIHead: keypoint_head is required (e.g. '
                "dict(type='KeypointHeatmapHead', num_keypoints=17)); use "
                "mmdet's StandardRoIHead for a head without keypoints.")
        if keypoint_roi_extractor is None:
            raise ValueError(
                'KeypointRoIHead: keypoint_roi_extractor is required, e.g. '
                "dict(type='SingleRoIExtractor', roi_layer=dict("
                "type='RoIAlign', output_size=14, sampling_ratio=0), "
                'out_channels=256, featmap_strides=[4, 8, 16, 32]).')
        # mmdet's registry: it sees mmdet's parts and (via its parent, the
        # root registry) ours, whatever the current default scope.
        self.keypoint_roi_extractor = MMDET_MODELS.build(
            keypoint_roi_extractor)
        self.keypoint_head = MMDET_MODELS.build(keypoint_head)

    @property
    def with_keypoint(self) -> bool:
        """Whether the head has a keypoint branch (always, once built)."""
        return getattr(self, 'keypoint_head', None) is not None

    def _keypoint_forward(self, x: Tuple[Tensor], rois: Tensor) -> Tensor:
        """Heatmap logits (N, K, S, S) for RoIs (N, 5)."""
        feats = self.keypoint_roi_extractor(
            x[:self.keypoint_roi_extractor.num_inputs], rois)
        return self.keypoint_head(feats)

    def forward(self, x: Tuple[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: SampleList = None) -> tuple:
        """Raw outputs (tensor mode): box outputs, masks, then heatmaps."""
        results = super().forward(x, rpn_results_list, batch_data_samples)
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        return results + (self._keypoint_forward(x, rois[:100]), )

    def loss(self, x: Tuple[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> dict:
        """Box (and mask) losses of ``StandardRoIHead`` + ``loss_keypoint``."""
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(
                f'KeypointRoIHead.loss: got {len(rpn_results_list)} proposal '
                f'lists for {len(batch_data_samples)} images; they must '
                'match one to one.')
        batch_gt_instances, batch_gt_instances_ignore, _ = \
            unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = self.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i],
                batch_gt_instances_ignore[i])
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[i],
                    feats=[lvl_feat[i][None] for lvl_feat in x]))

        losses = dict()
        bbox_results = self.bbox_loss(x, sampling_results)
        losses.update(bbox_results['loss_bbox'])
        if self.with_mask:
            mask_results = self.mask_loss(x, sampling_results,
                                          bbox_results['bbox_feats'],
                                          batch_gt_instances)
            losses.update(mask_results['loss_mask'])
        losses.update(
            self.keypoint_loss(x, sampling_results, batch_gt_instances))
        return losses

    def keypoint_loss(self, x: Tuple[Tensor], sampling_results: list,
                      batch_gt_instances: List[InstanceData]) -> dict:
        """Heatmap loss on the positive RoIs of every image."""
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        heatmaps = self._keypoint_forward(x, pos_rois)
        outputs = self.keypoint_head.loss_and_target(
            heatmaps, sampling_results, batch_gt_instances)
        return outputs['loss_keypoint']

    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: List[InstanceData],
                batch_data_samples: SampleList,
                rescale: bool = False) -> List[InstanceData]:
        """Boxes, then keypoints (and masks), in the original image scale.

        The box branch runs without rescaling so the keypoint (and mask)
        branch pools from boxes in the network-input frame; then boxes and
        keypoints are brought to the original image when ``rescale``.
        """
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        results_list = self.predict_bbox(
            x, batch_img_metas, rpn_results_list,
            rcnn_test_cfg=self.test_cfg, rescale=False)
        results_list = self.predict_keypoints(
            x, batch_img_metas, results_list, rescale=rescale)
        if self.with_mask:
            # The mask head rescales ``bboxes`` itself (in place).
            return self.predict_mask(
                x, batch_img_metas, results_list, rescale=rescale)
        if rescale:
            for results, img_meta in zip(results_list, batch_img_metas):
                scale = results.bboxes.new_tensor(
                    img_meta['scale_factor'][:2]).repeat(2)
                results.bboxes = results.bboxes / scale
        return results_list

    def predict_keypoints(self, x: Tuple[Tensor], batch_img_metas: List[dict],
                          results_list: List[InstanceData],
                          rescale: bool = False) -> List[InstanceData]:
        """Add ``keypoints`` and ``keypoint_scores`` to every result."""
        rois = bbox2roi([res.bboxes for res in results_list])
        if rois.shape[0] == 0:
            num_keypoints = self.keypoint_head.num_keypoints
            for results in results_list:
                results.keypoints = rois.new_zeros((0, num_keypoints, 2))
                results.keypoint_scores = rois.new_zeros((0, num_keypoints))
            return results_list
        heatmaps = self._keypoint_forward(x, rois)
        per_image = heatmaps.split([len(res) for res in results_list], 0)
        return self.keypoint_head.predict_by_feat(
            per_image, results_list, batch_img_metas, rescale=rescale)
