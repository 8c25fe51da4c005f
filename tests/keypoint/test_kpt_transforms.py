"""Keypoints stay attached to the person through resize, flip and packing."""
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from mmconvplug.keypoint import (
    COCO_PERSON_FLIP_INDICES,
    COCO_PERSON_KEYPOINT_NAMES,
    KeypointRandomFlip,
    KeypointResize,
    PackKeypointDetInputs,
    flip_indices_from_names,
)

NAMES = COCO_PERSON_KEYPOINT_NAMES


def _results(width=64, height=48):
    rng = np.random.default_rng(1)
    keypoints = rng.uniform([0, 0], [width, height], (2, 17, 2))
    visible = (rng.random((2, 17)) > 0.3).astype(np.float32)
    keypoints[visible == 0] = 0
    return dict(
        img=rng.integers(0, 255, (height, width, 3), dtype=np.uint8),
        img_shape=(height, width),
        gt_bboxes=HorizontalBoxes(np.array([[1, 2, 30, 40], [20, 5, 60, 47]],
                                           dtype=np.float32)),
        gt_bboxes_labels=np.array([0, 0]),
        gt_ignore_flags=np.array([False, True]),
        gt_keypoints=keypoints.astype(np.float32),
        gt_keypoints_visible=visible,
        flip_indices=list(COCO_PERSON_FLIP_INDICES))


def test_flip_indices_swap_left_and_right():
    flip = flip_indices_from_names(NAMES)
    for i, name in enumerate(NAMES):
        mirrored = NAMES[flip[i]]
        assert mirrored == name.replace('left_', 'X').replace(
            'right_', 'left_').replace('X', 'right_')
    with pytest.raises(ValueError, match='right_hand'):
        flip_indices_from_names(['nose', 'left_hand'])


def test_flip_twice_restores_and_once_swaps_sides():
    original = _results()
    flip = KeypointRandomFlip(prob=1.0, direction='horizontal')
    once = flip(dict(original, gt_bboxes=original['gt_bboxes'].clone()))
    width = original['img'].shape[1]

    left_eye, right_eye = NAMES.index('left_eye'), NAMES.index('right_eye')
    for person in range(2):
        if original['gt_keypoints_visible'][person, right_eye]:
            # The flipped person's left eye is the mirror of its right one.
            np.testing.assert_allclose(
                once['gt_keypoints'][person, left_eye],
                [width - original['gt_keypoints'][person, right_eye, 0],
                 original['gt_keypoints'][person, right_eye, 1]],
                rtol=0, atol=1e-4)
    np.testing.assert_array_equal(
        once['gt_keypoints_visible'][:, left_eye],
        original['gt_keypoints_visible'][:, right_eye])

    twice = flip(once)
    np.testing.assert_allclose(twice['gt_keypoints'],
                               _results()['gt_keypoints'], atol=1e-4)
    np.testing.assert_array_equal(twice['gt_keypoints_visible'],
                                  _results()['gt_keypoints_visible'])
    np.testing.assert_array_equal(twice['img'], _results()['img'])


def test_diagonal_flip_rotates_without_relabelling():
    original = _results()
    out = KeypointRandomFlip(prob=1.0, direction='diagonal')(_results())
    visible = original['gt_keypoints_visible'] > 0
    expected = np.array([64, 48]) - original['gt_keypoints']
    np.testing.assert_allclose(out['gt_keypoints'][visible],
                               expected[visible], atol=1e-4)


def test_flip_without_flip_indices_is_an_error():
    results = _results()
    del results['flip_indices']
    with pytest.raises(ValueError, match='flip_indices'):
        KeypointRandomFlip(prob=1.0)(results)


def test_resize_scales_keypoints_like_boxes():
    original = _results()
    out = KeypointResize(scale=(128, 72), keep_ratio=False)(_results())
    np.testing.assert_allclose(out['gt_keypoints'],
                               original['gt_keypoints'] * [2.0, 1.5],
                               rtol=1e-5)


def test_pack_splits_keypoints_with_the_ignore_flags():
    packed = PackKeypointDetInputs()(_results())
    gt = packed['data_samples'].gt_instances
    ignored = packed['data_samples'].ignored_instances
    assert gt.keypoints.shape == (1, 17, 2)
    assert gt.keypoints_visible.shape == (1, 17)
    assert ignored.keypoints.shape == (1, 17, 2)
