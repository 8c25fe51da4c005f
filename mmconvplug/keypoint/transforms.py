"""Data pipeline steps that carry keypoints along with boxes.

Drop-in replacements for their mmdet namesakes: each one subclasses the mmdet
transform, does exactly what it does, and also updates

* ``gt_keypoints`` (N, K, 2) float32, continuous image coordinates, and
* ``gt_keypoints_visible`` (N, K) float32, 1 where labelled.

A keypoint pipeline therefore reads like a box pipeline with four names
changed::

    dict(type='LoadImageFromFile'),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='KeypointResize', scale=(1333, 800), keep_ratio=True),
    dict(type='KeypointRandomFlip', prob=0.5),
    dict(type='PackKeypointDetInputs'),

Any other geometric transform (crop, affine, mosaic ...) would leave the
keypoints behind; it is not supported in a keypoint pipeline.
"""
import numpy as np
from mmdet.datasets.transforms import (
    LoadAnnotations,
    PackDetInputs,
    RandomFlip,
    Resize,
)

from mmconvplug.registry import TRANSFORMS

# Mirroring (horizontal or vertical) turns a left limb into a right one; the
# 180-degree rotation that ``diagonal`` flipping is does not.
_MIRRORING_DIRECTIONS = ('horizontal', 'vertical')


@TRANSFORMS.register_module()
class LoadKeypointAnnotations(LoadAnnotations):
    """mmdet's ``LoadAnnotations`` + ``gt_keypoints``/``gt_keypoints_visible``.

    Reads each instance's ``keypoints`` (K, 2) and ``keypoints_visible``
    (K,) as written by ``CocoKeypointDataset``.

    Args:
        with_keypoints: load the keypoints (default True).
        **kwargs: ``LoadAnnotations`` arguments (``with_bbox``, ...).
    """

    def __init__(self, with_keypoints: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_keypoints = with_keypoints

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        if self.with_keypoints:
            self._load_keypoints(results)
        return results

    @staticmethod
    def _load_keypoints(results: dict) -> None:
        instances = results.get('instances', [])
        num_keypoints = len(results.get('flip_indices', ()))
        if instances:
            num_keypoints = len(instances[0]['keypoints'])
        keypoints = np.zeros((len(instances), num_keypoints, 2), np.float32)
        visible = np.zeros((len(instances), num_keypoints), np.float32)
        for i, instance in enumerate(instances):
            if 'keypoints' not in instance:
                raise ValueError(
                    'LoadKeypointAnnotations: an instance has no '
                    "'keypoints'; use a dataset that provides them "
                    "(type='CocoKeypointDataset') or set "
                    'with_keypoints=False.')
            keypoints[i] = instance['keypoints']
            visible[i] = instance['keypoints_visible']
        results['gt_keypoints'] = keypoints
        results['gt_keypoints_visible'] = visible

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', with_keypoints={self.with_keypoints})')


@TRANSFORMS.register_module()
class KeypointResize(Resize):
    """mmdet's ``Resize`` that also scales ``gt_keypoints``."""

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        if results.get('gt_keypoints') is not None:
            w_scale, h_scale = results['scale_factor']
            results['gt_keypoints'] = (
                results['gt_keypoints'] *
                np.array([w_scale, h_scale], dtype=np.float32))
        return results


@TRANSFORMS.register_module()
class KeypointRandomFlip(RandomFlip):
    """mmdet's ``RandomFlip`` that also flips keypoints and swaps left/right.

    The left/right permutation comes from ``results['flip_indices']``, which
    ``CocoKeypointDataset`` puts in every sample from its metainfo. A
    horizontal flip maps ``x -> w - x`` (exact in continuous coordinates),
    a vertical one ``y -> h - y``; both mirror the person, so the joints
    are relabelled. ``diagonal`` (a 180-degree rotation) keeps the labels.
    """

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        if results.get('gt_keypoints') is None:
            return
        direction = results['flip_direction']
        height, width = results['img'].shape[:2]
        keypoints = results['gt_keypoints'].copy()
        visible = results['gt_keypoints_visible']
        if direction in ('horizontal', 'diagonal'):
            keypoints[..., 0] = width - keypoints[..., 0]
        if direction in ('vertical', 'diagonal'):
            keypoints[..., 1] = height - keypoints[..., 1]
        if direction in _MIRRORING_DIRECTIONS:
            flip_indices = results.get('flip_indices')
            if flip_indices is None:
                raise ValueError(
                    'KeypointRandomFlip: results has no flip_indices, so '
                    'left and right keypoints cannot be swapped. Use '
                    "type='CocoKeypointDataset' (it adds them from its "
                    'metainfo) or add flip_indices to the data info.')
            if len(flip_indices) != keypoints.shape[1]:
                raise ValueError(
                    f'KeypointRandomFlip: flip_indices has '
                    f'{len(flip_indices)} entries for {keypoints.shape[1]} '
                    'keypoints; give one index per keypoint.')
            keypoints = keypoints[:, flip_indices]
            visible = visible[:, flip_indices]
        keypoints[visible == 0] = 0
        results['gt_keypoints'] = keypoints
        results['gt_keypoints_visible'] = visible


@TRANSFORMS.register_module()
class PackKeypointDetInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` that also packs the keypoints.

    ``gt_instances.keypoints`` (N, K, 2) and ``gt_instances.keypoints_visible``
    (N, K); crowd instances go to ``ignored_instances`` as their boxes do.
    """
    mapping_table = {
        **PackDetInputs.mapping_table,
        'gt_keypoints': 'keypoints',
        'gt_keypoints_visible': 'keypoints_visible',
    }
