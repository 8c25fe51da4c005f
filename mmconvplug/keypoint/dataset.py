"""``CocoKeypointDataset``: COCO ``person_keypoints_*.json`` for mmdet.

Reads the same json as mmdet's ``CocoDataset`` (boxes, crowd flags) and adds,
per instance, ``keypoints`` (K, 2) and ``keypoints_visible`` (K,).

Conventions (as detectron2's, so numbers compare):

* COCO stores keypoints as integer pixel indices; we add 0.5 to get the
  pixel centre in continuous image coordinates (the frame boxes live in),
  which makes flipping exact. The metric subtracts it again when writing
  COCO results.
* ``keypoints_visible`` is 1 for COCO ``v`` in {1, 2} (labelled, occluded or
  not) and 0 for ``v == 0``; COCO's OKS also counts every ``v > 0``.
* Crowd annotations become ignored boxes (``ignore_flag=1``), as in
  ``CocoDataset``. Persons with ``num_keypoints == 0`` stay ordinary boxes
  with no visible keypoints, so they add no keypoint loss.
* Training images whose non-crowd persons have fewer than
  ``filter_cfg['min_keypoints_per_image']`` visible keypoints in total are
  dropped (detectron2's ``MIN_KEYPOINTS_PER_IMAGE``, 1 there); set it to 0
  to keep them.
"""
from typing import List, Union

import numpy as np
from mmdet.datasets import CocoDataset

from mmconvplug.registry import DATASETS
from .coco_person_meta import COCO_PERSON_METAINFO

KEYPOINT_PIXEL_CENTRE_OFFSET = 0.5


@DATASETS.register_module()
class CocoKeypointDataset(CocoDataset):
    """COCO person keypoints; metainfo holds names, skeleton, flip indices.

    ``filter_cfg`` accepts mmdet's ``filter_empty_gt`` and ``min_size`` plus
    ``min_keypoints_per_image`` (default 1 when ``filter_cfg`` is given).
    Every data info carries ``flip_indices`` so ``KeypointRandomFlip`` can
    swap left and right joints.
    """

    METAINFO = COCO_PERSON_METAINFO

    def load_data_list(self) -> List[dict]:
        """Load the json, then check it matches the keypoint metainfo."""
        data_list = super().load_data_list()
        self._check_keypoint_metainfo()
        return data_list

    def _check_keypoint_metainfo(self) -> None:
        """Raise if the metainfo's keypoint lists disagree in length."""
        num_keypoints = len(self.metainfo['keypoint_names'])
        for key in ('flip_indices', 'keypoint_sigmas'):
            if len(self.metainfo[key]) != num_keypoints:
                raise ValueError(
                    f'CocoKeypointDataset metainfo: {key} has '
                    f'{len(self.metainfo[key])} entries but keypoint_names '
                    f'has {num_keypoints}; give one per keypoint.')

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """``CocoDataset``'s parsing, plus keypoints for each kept instance.

        Instances are parsed one annotation at a time by the parent class so
        the box filtering stays exactly mmdet's.
        """
        img_info = raw_data_info['raw_img_info']
        data_info = super().parse_data_info(
            dict(raw_ann_info=[], raw_img_info=img_info))
        num_keypoints = len(self.metainfo['keypoint_names'])
        instances = []
        for ann in raw_data_info['raw_ann_info']:
            parsed = super().parse_data_info(
                dict(raw_ann_info=[ann], raw_img_info=img_info))['instances']
            if not parsed:
                continue
            instance = parsed[0]
            instance['keypoints'], instance['keypoints_visible'] = \
                self._parse_keypoints(ann, num_keypoints)
            instances.append(instance)
        data_info['instances'] = instances
        data_info['flip_indices'] = list(self.metainfo['flip_indices'])
        return data_info

    def _parse_keypoints(self, ann: dict, num_keypoints: int) -> tuple:
        """COCO ``[x1, y1, v1, ...]`` -> ((K, 2) centres, (K,) visibility)."""
        raw = ann.get('keypoints')
        if not raw:
            return (np.zeros((num_keypoints, 2), dtype=np.float32),
                    np.zeros(num_keypoints, dtype=np.float32))
        triplets = np.asarray(raw, dtype=np.float32).reshape(-1, 3)
        if len(triplets) != num_keypoints:
            raise ValueError(
                f'CocoKeypointDataset: annotation {ann.get("id")} in '
                f'{self.ann_file} has {len(triplets)} keypoints, but the '
                f'metainfo names {num_keypoints}. Pass metainfo with '
                'matching keypoint_names/flip_indices/keypoint_sigmas.')
        visible = (triplets[:, 2] > 0).astype(np.float32)
        keypoints = triplets[:, :2] + KEYPOINT_PIXEL_CENTRE_OFFSET
        keypoints[visible == 0] = 0
        return keypoints, visible

    def filter_data(self) -> List[dict]:
        """mmdet's filters, then drop images with too few keypoints."""
        valid = super().filter_data()
        if self.test_mode or self.filter_cfg is None:
            return valid
        min_keypoints = self.filter_cfg.get('min_keypoints_per_image', 1)
        if min_keypoints < 0:
            raise ValueError(
                'CocoKeypointDataset filter_cfg: min_keypoints_per_image '
                f'must be >= 0, got {min_keypoints}; use 0 to keep images '
                'without keypoints.')
        return [
            info for info in valid
            if self._count_visible_keypoints(info) >= min_keypoints
        ]

    @staticmethod
    def _count_visible_keypoints(data_info: dict) -> int:
        """Visible keypoints over the non-crowd instances of one image."""
        return int(
            sum(inst['keypoints_visible'].sum()
                for inst in data_info['instances']
                if not inst['ignore_flag']))
