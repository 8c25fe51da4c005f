"""The shipped keypoint metainfo: COCO persons (17), CrowdPose and AIC (14).

Each set's sigmas are the cited source's numbers (crowdposetools'
``computeOks``; mmpose's ``aic.py``, half the official AIC ``delta``), its
flip indices mirror every left/right pair (and nothing else), its skeleton
stays inside K, and its four per-keypoint lists agree.
"""
import numpy as np
import pytest

from mmconvplug.keypoint import (
    AIC_METAINFO,
    COCO_PERSON_METAINFO,
    CROWDPOSE_COUNTED_KEYPOINTS,
    CROWDPOSE_METAINFO,
    AicKeypointDataset,
    CocoKeypointDataset,
    CrowdPoseKeypointDataset,
    KeypointCountError,
    check_keypoint_counts,
)
from mmconvplug.keypoint.keypoint_counts import metainfo_counts

METAINFO = {
    'coco': (COCO_PERSON_METAINFO, 17, CocoKeypointDataset),
    'crowdpose': (CROWDPOSE_METAINFO, 14, CrowdPoseKeypointDataset),
    'aic': (AIC_METAINFO, 14, AicKeypointDataset),
}


@pytest.mark.parametrize('name', sorted(METAINFO))
def test_lists_agree_flips_mirror_and_skeleton_fits(name):
    meta, k, cls = METAINFO[name]
    assert cls.METAINFO is meta
    assert [n for _, n in metainfo_counts(meta)] == [k, k, k]
    check_keypoint_counts(name, [('K', k)] + list(metainfo_counts(meta)))
    names, flip = meta['keypoint_names'], np.asarray(meta['flip_indices'])
    assert sorted(flip) == list(range(k))
    np.testing.assert_array_equal(flip[flip], np.arange(k))  # involution
    for i, j in enumerate(flip):
        if names[i].startswith('left_'):
            assert names[j] == 'right_' + names[i][len('left_'):]
        elif not names[i].startswith('right_'):
            assert j == i  # head / neck / nose keep their index
    skeleton = np.asarray(meta['skeleton'])
    assert skeleton.min() >= 0 and skeleton.max() < k
    assert meta['classes'] == ('person', )


def test_crowdpose_sigmas_are_the_official_toolkits():
    # crowdposetools/cocoeval.py, COCOeval.computeOks
    official = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                         .89, .89, .79, .79]) / 10.0
    np.testing.assert_allclose(CROWDPOSE_METAINFO['keypoint_sigmas'],
                               official, rtol=0, atol=1e-12)
    assert CROWDPOSE_METAINFO['keypoint_names'][12:] == ('top_head', 'neck')
    # CrowdPose's body joints are COCO's shoulders .. ankles, in order
    assert CROWDPOSE_METAINFO['keypoint_names'][:12] == \
        COCO_PERSON_METAINFO['keypoint_names'][5:]
    assert CROWDPOSE_COUNTED_KEYPOINTS == tuple(range(12))


def test_aic_sigmas_are_half_the_official_delta():
    # AI_Challenger_2017 keypoint_eval.py: delta = 2 * [...]
    delta = 2 * np.array([
        0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891,
        0.01402144, 0.03909642, 0.03686941, 0.01981803, 0.03843971,
        0.03412318, 0.02415081, 0.01291456, 0.01236173])
    np.testing.assert_allclose(
        2 * np.asarray(AIC_METAINFO['keypoint_sigmas']), delta, rtol=0,
        atol=1e-12)
    names = AIC_METAINFO['keypoint_names']
    assert names[:3] == ('right_shoulder', 'right_elbow', 'right_wrist')
    assert AIC_METAINFO['flip_indices'][0] == names.index('left_shoulder')


def test_count_check_lists_every_length_and_skips_unknown_ones():
    check_keypoint_counts('x', [('a', 3), ('b', None), ('c', 3)])
    with pytest.raises(KeypointCountError) as error:
        check_keypoint_counts('where', [('K', 17), ('keypoint_names', 14),
                                        ('flip_indices', None),
                                        ('keypoint_sigmas', 14)])
    message = str(error.value)
    assert message.startswith('where: the number of keypoints disagrees')
    assert ('K: 17, keypoint_names: 14, flip_indices: unknown, '
            'keypoint_sigmas: 14') in message
    assert isinstance(error.value, ValueError)
