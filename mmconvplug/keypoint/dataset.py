"""``CocoKeypointDataset``: COCO-style keypoint files for mmdet.

Reads the same json as mmdet's ``CocoDataset`` (boxes, crowd flags) and adds,
per instance, ``keypoints`` (K, 2) and ``keypoints_visible`` (K,), K being
the length of the metainfo's ``keypoint_names`` (COCO persons: 17;
:class:`~mmconvplug.keypoint.CrowdPoseKeypointDataset` and
:class:`~mmconvplug.keypoint.AicKeypointDataset`: 14).

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

Published files load as they are (:mod:`mmconvplug.keypoint.coco_style`):
an annotation without ``area`` gets mmpose's ``max(1, 0.53 * w * h)`` of its
clipped box, and ``num_keypoints`` is the file's field where present (so a
CrowdPose person whose field is 0 has no keypoint targets, whatever its
flags say) and the number of labelled joints where absent. Each instance
keeps the ``area`` and ``num_keypoints`` used, so a metric without
``ann_file`` evaluates what an ``ann_file`` metric would.
"""
from typing import List, Union

import numpy as np
from mmdet.datasets import CocoDataset

from mmconvplug.registry import DATASETS

from .coco_person_meta import COCO_PERSON_METAINFO
from .coco_style import complete_annotation
from .keypoint_counts import check_keypoint_counts, metainfo_counts

KEYPOINT_PIXEL_CENTRE_OFFSET = 0.5


@DATASETS.register_module()
class CocoKeypointDataset(CocoDataset):
    """COCO-style person keypoints; metainfo holds names, skeleton, flip
    indices and OKS sigmas.

    ``filter_cfg`` accepts mmdet's ``filter_empty_gt`` and ``min_size`` plus
    ``min_keypoints_per_image`` (default 1 when ``filter_cfg`` is given).
    Every data info carries ``flip_indices`` so ``KeypointRandomFlip`` can
    swap left and right joints.

    Raises:
        KeypointCountError: (a ``ValueError``) the metainfo's
            ``keypoint_names``, ``flip_indices`` and ``keypoint_sigmas``
            differ in length, or an annotation (or the category's
            ``keypoints`` list) of the file has another number of keypoints.
    """

    METAINFO = COCO_PERSON_METAINFO

    def load_data_list(self) -> List[dict]:
        """Check the metainfo, then load the json (checked against it)."""
        check_keypoint_counts(f'{type(self).__name__} metainfo',
                              metainfo_counts(self.metainfo))
        self._category_checked = False
        return super().load_data_list()

    @property
    def num_keypoints(self) -> int:
        """K: keypoints per person, from the metainfo."""
        return len(self.metainfo['keypoint_names'])

    def _check_file_count(self, what: str, count: int) -> None:
        check_keypoint_counts(
            f'{type(self).__name__} ({self.ann_file})',
            [(what, count)] + list(metainfo_counts(self.metainfo)))

    def _check_category(self) -> None:
        """The categories' ``keypoints`` names, once per file."""
        if self._category_checked or not hasattr(self, 'coco'):
            return
        self._category_checked = True
        for cat_id in self.cat_ids:
            names = self.coco.cats[cat_id].get('keypoints')
            if names:
                self._check_file_count(
                    f'K in the file (category {cat_id} keypoints)',
                    len(names))

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """``CocoDataset``'s parsing, plus keypoints for each kept instance.

        Instances are parsed one annotation at a time by the parent class so
        the box filtering stays exactly mmdet's; each annotation is first
        completed (``area``, ``num_keypoints``) by
        :func:`~mmconvplug.keypoint.coco_style.complete_annotation`.
        """
        self._check_category()
        img_info = raw_data_info['raw_img_info']
        data_info = super().parse_data_info(
            dict(raw_ann_info=[], raw_img_info=img_info))
        instances = []
        for ann in raw_data_info['raw_ann_info']:
            ann = complete_annotation(ann, img_info)
            parsed = super().parse_data_info(
                dict(raw_ann_info=[ann], raw_img_info=img_info))['instances']
            if not parsed:
                continue
            instance = parsed[0]
            keypoints, visible = self._parse_keypoints(ann)
            if ann['num_keypoints'] == 0:
                keypoints[:] = 0
                visible[:] = 0
            instance['keypoints'] = keypoints
            instance['keypoints_visible'] = visible
            instance['num_keypoints'] = int(ann['num_keypoints'])
            instance['area'] = float(ann['area'])
            instances.append(instance)
        data_info['instances'] = instances
        data_info['flip_indices'] = list(self.metainfo['flip_indices'])
        return data_info

    def _parse_keypoints(self, ann: dict) -> tuple:
        """COCO ``[x1, y1, v1, ...]`` -> ((K, 2) centres, (K,) visibility)."""
        num_keypoints = self.num_keypoints
        raw = ann.get('keypoints')
        if not raw:
            return (np.zeros((num_keypoints, 2), dtype=np.float32),
                    np.zeros(num_keypoints, dtype=np.float32))
        if len(raw) % 3:
            raise ValueError(
                f'{type(self).__name__}: annotation {ann.get("id")} in '
                f'{self.ann_file} has {len(raw)} keypoint values, not a '
                'multiple of 3 (COCO stores x, y, v per keypoint).')
        if len(raw) // 3 != num_keypoints:
            self._check_file_count(
                f'K in the file (annotation {ann.get("id")})', len(raw) // 3)
        triplets = np.asarray(raw, dtype=np.float32).reshape(-1, 3)
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
                f'{type(self).__name__} filter_cfg: min_keypoints_per_image '
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
