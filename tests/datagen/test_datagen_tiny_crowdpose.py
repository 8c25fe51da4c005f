"""Tiny CrowdPose: the published layout, fields and quirks, K = 14, read by
``CrowdPoseKeypointDataset``."""
import json
import os.path as osp

import numpy as np
import pytest

from mmconvplug.datagen import TINY_DATASETS, make_tiny_crowdpose
from mmconvplug.datagen.shapes import person_keypoints
from mmconvplug.datagen.tiny_crowdpose import (
    PUBLISHED_KEYPOINT_NAMES,
    crowdpose_points,
)
from mmconvplug.keypoint import CrowdPoseKeypointDataset

SIZE = (96, 96)
#: The fields of an annotation of the published file, no more.
PUBLISHED_FIELDS = {'num_keypoints', 'iscrowd', 'keypoints', 'image_id',
                    'bbox', 'category_id', 'id'}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_crowdpose'))
    return dict(make_tiny_crowdpose(root, num_train=8, num_val=2, size=SIZE,
                                    seed=3), root=root)


def test_layout_and_fields_are_the_published_files(files):
    assert TINY_DATASETS['crowdpose'].make is make_tiny_crowdpose
    assert files['keypoints_train'].endswith(
        osp.join('annotations', 'crowdpose_trainval.json'))
    assert files['keypoints_val'].endswith(
        osp.join('annotations', 'crowdpose_test.json'))
    data = json.load(open(files['keypoints_train']))
    (cat, ) = data['categories']
    assert cat['keypoints'] == list(PUBLISHED_KEYPOINT_NAMES)
    assert cat['keypoints'][12] == 'head'  # not mmpose's top_head
    assert max(max(pair) for pair in cat['skeleton']) == 17  # as published
    for img in data['images']:
        assert osp.isfile(osp.join(files['images'], img['file_name']))
        assert 0.0 <= img['crowdIndex'] <= 1.0
    assert data['annotations']
    disagree = 0
    for ann in data['annotations']:
        assert set(ann) == PUBLISHED_FIELDS  # no area, no segmentation
        kps = np.asarray(ann['keypoints'], float).reshape(14, 3)
        v = kps[:, 2]
        assert set(v) <= {0, 1, 2}
        assert (kps[v == 0, :2] == 0).all()
        # CrowdPose's count: the 12 body joints, not head and neck
        assert ann['num_keypoints'] == int((v[:12] > 0).sum())
        disagree += ann['num_keypoints'] != int((v > 0).sum())
        x, y, w, h = ann['bbox']
        lab = kps[v > 0]
        assert (lab[:, 0] >= x).all() and (lab[:, 0] <= x + w).all()
    assert disagree > 0  # the quirk is there


def test_same_seed_same_files(files, tmp_path):
    again = make_tiny_crowdpose(str(tmp_path), num_train=8, num_val=2,
                                size=SIZE, seed=3)
    for key in ('keypoints_train', 'keypoints_val'):
        assert open(again[key]).read() == open(files[key]).read()


def test_top_head_and_neck_sit_above_the_shoulders():
    rng = np.random.default_rng(0)
    coco = person_keypoints(rng, 50.0, 50.0, 60.0)
    points = crowdpose_points(coco)
    assert points.shape == (14, 2)
    np.testing.assert_array_equal(points[:12], coco[5:])
    top_head, neck = points[12], points[13]
    shoulders_y = coco[5:7, 1].mean()
    assert top_head[1] < coco[0, 1] < neck[1] < shoulders_y  # above the nose


def test_crowdpose_dataset_reads_the_tiny_set(files):
    dataset = CrowdPoseKeypointDataset(
        data_root=files['root'], ann_file='annotations/crowdpose_trainval.json',
        data_prefix=dict(img='images/'), pipeline=[],
        filter_cfg=dict(filter_empty_gt=True, min_keypoints_per_image=1))
    assert len(dataset) > 0
    person = dataset.get_data_info(0)['instances'][0]
    assert person['keypoints'].shape == (14, 2)
    assert person['area'] >= 1.0
