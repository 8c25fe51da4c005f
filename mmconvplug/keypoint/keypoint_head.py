"""Heatmap head of Keypoint R-CNN: conv stack + deconv up to S x S maps.

RoI features (C x 14 x 14) go through ``num_convs`` 3x3 conv+ReLU layers
(8 x 512 in the paper and detectron2), a stride-2 transposed conv to one map
per keypoint (28 x 28) and a bilinear x2 upsample (56 x 56). The convs are
``ConvModule`` s built from ``conv_cfg``, so the conv variants of this plugin
(``conv_cfg=dict(type='DOConv')`` ...) drop in here as anywhere in mmdet.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmconvplug.registry import MODELS

from .heatmap_codec import decode_heatmaps, encode_heatmap_targets
from .keypoint_counts import KeypointCountError


@MODELS.register_module()
class KeypointHeatmapHead(BaseModule):
    """Predicts one heatmap per keypoint for every RoI.

    Args:
        num_keypoints: K, keypoints per instance: the length of the
            dataset metainfo's ``keypoint_names`` (17 for COCO persons, 14
            for CrowdPose and AIC).
        in_channels: channels of the RoI features.
        num_convs: 3x3 convs before upsampling (0 allowed).
        conv_out_channels: channels of those convs.
        roi_feat_size: side of the RoI features (the heatmap is
            ``roi_feat_size * 4`` on a side).
        conv_cfg: conv layer config for the 3x3 convs (None: ``nn.Conv2d``).
        norm_cfg: optional norm layer after each conv.
        loss_keypoint: config of the heatmap loss.
        init_cfg: mmengine init config; None uses Kaiming (fan_out, ReLU)
            for every conv and the deconv, as detectron2 does.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 in_channels: int = 256,
                 num_convs: int = 8,
                 conv_out_channels: int = 512,
                 roi_feat_size: int = 14,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 loss_keypoint: dict = dict(
                     type='KeypointHeatmapLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('num_keypoints', num_keypoints),
                            ('in_channels', in_channels),
                            ('conv_out_channels', conv_out_channels),
                            ('roi_feat_size', roi_feat_size)):
            if value < 1:
                raise ValueError(
                    f'KeypointHeatmapHead: {name} must be a positive '
                    f'integer, got {value}.')
        if num_convs < 0:
            raise ValueError(
                f'KeypointHeatmapHead: num_convs must be >= 0, got '
                f'{num_convs}.')
        self.num_keypoints = num_keypoints
        self.roi_feat_size = roi_feat_size
        self.heatmap_size = roi_feat_size * 4
        convs = []
        channels = in_channels
        for _ in range(num_convs):
            convs.append(
                ConvModule(
                    channels,
                    conv_out_channels,
                    3,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=dict(type='ReLU')))
            channels = conv_out_channels
        self.convs = nn.Sequential(*convs)
        self.heatmap_deconv = nn.ConvTranspose2d(
            channels, num_keypoints, kernel_size=4, stride=2, padding=1)
        # mmdet's registry finds mmdet's losses and (via the root) ours.
        self.loss_keypoint = MMDET_MODELS.build(loss_keypoint)

    def init_weights(self) -> None:
        """Kaiming-init the deconv too (ConvModule already inits its conv)."""
        super().init_weights()
        if self.init_cfg is None:
            nn.init.kaiming_normal_(
                self.heatmap_deconv.weight, mode='fan_out',
                nonlinearity='relu')
            nn.init.zeros_(self.heatmap_deconv.bias)

    def forward(self, roi_feats: Tensor) -> Tensor:
        """(N, C, R, R) RoI features -> (N, K, 4R, 4R) heatmap logits."""
        x = self.convs(roi_feats)
        x = self.heatmap_deconv(x)
        return F.interpolate(
            x, scale_factor=2, mode='bilinear', align_corners=False)

    def get_targets(self, sampling_results: list,
                    batch_gt_instances: List[InstanceData]
                    ) -> Tuple[Tensor, Tensor]:
        """Heatmap cell targets and validity for all positive RoIs.

        Raises:
            KeypointCountError: the ground truth's K is not
                ``num_keypoints``.
        """
        all_targets, all_valid = [], []
        for result, gt in zip(sampling_results, batch_gt_instances):
            pos_rois = result.pos_priors
            assigned = result.pos_assigned_gt_inds
            if len(gt) == 0 or 'keypoints' not in gt:
                shape = (len(pos_rois), self.num_keypoints)
                all_targets.append(pos_rois.new_zeros(shape, dtype=torch.long))
                all_valid.append(pos_rois.new_zeros(shape, dtype=torch.bool))
                continue
            if gt.keypoints.shape[1] != self.num_keypoints:
                raise KeypointCountError(
                    f'KeypointHeatmapHead: the model predicts '
                    f'num_keypoints={self.num_keypoints} heatmaps, but the '
                    f'ground truth has {gt.keypoints.shape[1]} keypoints per '
                    'person (K of the dataset metainfo). Set '
                    'model.roi_head.keypoint_head.num_keypoints='
                    f'{gt.keypoints.shape[1]} (python tools/train.py checks '
                    'this before building, naming every keypoint list).')
            keypoints = gt.keypoints[assigned].to(pos_rois)
            visible = gt.keypoints_visible[assigned].to(pos_rois)
            targets, valid = encode_heatmap_targets(
                keypoints, visible, pos_rois, self.heatmap_size)
            all_targets.append(targets)
            all_valid.append(valid)
        return torch.cat(all_targets), torch.cat(all_valid)

    def loss_and_target(self, heatmap_logits: Tensor, sampling_results: list,
                        batch_gt_instances: List[InstanceData]) -> dict:
        """Keypoint loss of the positive RoIs' heatmaps."""
        targets, valid = self.get_targets(sampling_results,
                                          batch_gt_instances)
        loss = self.loss_keypoint(heatmap_logits, targets, valid)
        return dict(
            loss_keypoint=dict(loss_keypoint=loss),
            keypoint_targets=targets,
            keypoint_valid=valid)

    def predict_by_feat(self, heatmap_logits: Tuple[Tensor, ...],
                        results_list: List[InstanceData],
                        batch_img_metas: List[dict],
                        rescale: bool = False) -> List[InstanceData]:
        """Decode heatmaps into ``keypoints`` (N, K, 2), ``keypoint_scores``.

        ``results.bboxes`` must still be in the network-input scale (as the
        heatmaps were pooled from them); with ``rescale`` the keypoints are
        divided by the image's ``scale_factor`` to the original image.
        """
        for heatmaps, results, img_meta in zip(heatmap_logits, results_list,
                                               batch_img_metas):
            bboxes = results.bboxes
            keypoints, scores = decode_heatmaps(heatmaps.float(), bboxes)
            if rescale:
                scale = keypoints.new_tensor(img_meta['scale_factor'][:2])
                keypoints = keypoints / scale
            results.keypoints = keypoints
            results.keypoint_scores = scores
        return results_list
