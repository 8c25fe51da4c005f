"""Tiny COCO: instances and person keypoints read by mmdet's CocoDataset and
pycocotools; boxes, polygon masks and keypoints agree."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmconvplug.datagen import (
    COCO_CLASSES,
    make_tiny_coco,
    make_tiny_coco_keypoints,
)
from mmconvplug.keypoint import COCO_PERSON_KEYPOINT_NAMES

SIZE = (96, 96)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_coco'))
    make_tiny_coco(root, num_train=6, num_val=3, size=SIZE, seed=2)
    return root


@pytest.fixture(scope='module')
def kpt_files(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_coco_kpt'))
    return make_tiny_coco_keypoints(root, num_train=10, num_val=2, size=SIZE,
                                    seed=4)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_dataset_reads_boxes_and_masks(coco_root, split):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    ds = DATASETS.build(
        dict(type='CocoDataset',
             data_root=coco_root,
             ann_file=f'annotations/instances_{split}2017.json',
             data_prefix=dict(img=f'{split}2017/'),
             test_mode=split == 'val',
             pipeline=[
                 dict(type='LoadImageFromFile'),
                 dict(type='LoadAnnotations', with_bbox=True,
                      with_mask=True),
                 dict(type='Resize', scale=(64, 64), keep_ratio=True),
                 dict(type='PackDetInputs')
             ]))
    assert ds.metainfo['classes'] == COCO_CLASSES
    assert len(ds) > 0
    n_instances = 0
    for idx in range(len(ds)):
        gt = ds[idx]['data_samples'].gt_instances
        masks = gt.masks.to_ndarray()
        for box, mask in zip(gt.bboxes.tensor.numpy(), masks):
            ys, xs = np.nonzero(mask)
            assert xs.size > 0
            # the rasterised polygon lies inside its (resized) box
            assert xs.min() >= box[0] - 1.5 and xs.max() <= box[2] + 1.5
            assert ys.min() >= box[1] - 1.5 and ys.max() <= box[3] + 1.5
        n_instances += len(gt)
    assert n_instances > 0


def test_polygons_decode_to_their_box(coco_root):
    coco = COCO(osp.join(coco_root, 'annotations/instances_train2017.json'))
    assert len(coco.getCatIds()) == 80
    for ann in coco.loadAnns(coco.getAnnIds()):
        img = coco.imgs[ann['image_id']]
        x, y, w, h = ann['bbox']
        assert x >= 0 and y >= 0 and x + w <= img['width'] and \
            y + h <= img['height']
        mask = coco.annToMask(ann)
        dx, dy, dw, dh = mask_utils.toBbox(mask_utils.encode(
            np.asfortranarray(mask)))
        assert (dx, dy, dw, dh) == pytest.approx((x, y, w, h), abs=0.5)
        assert ann['area'] == pytest.approx(mask.sum(), abs=0.5)


def test_person_keypoints_are_coco(kpt_files):
    data = json.load(open(kpt_files['keypoints_train']))
    (cat, ) = data['categories']
    assert cat['name'] == 'person' and cat['id'] == 1
    assert cat['keypoints'] == list(COCO_PERSON_KEYPOINT_NAMES)
    assert len(cat['skeleton']) == 19
    coco = COCO(kpt_files['keypoints_train'])
    visibilities = []
    assert coco.getAnnIds()
    for ann in coco.loadAnns(coco.getAnnIds()):
        kps = np.asarray(ann['keypoints'], float).reshape(17, 3)
        v = kps[:, 2]
        assert set(v) <= {0, 1, 2}
        assert ann['num_keypoints'] == int((v > 0).sum())
        assert (kps[v == 0, :2] == 0).all()
        x, y, w, h = ann['bbox']
        lab = kps[v > 0]
        assert (lab[:, 0] >= x).all() and (lab[:, 0] <= x + w).all()
        assert (lab[:, 1] >= y).all() and (lab[:, 1] <= y + h).all()
        visibilities += list(v)
    assert {0, 2} <= set(visibilities)
    # the instances file lists the same persons
    inst = COCO(kpt_files['instances_train'])
    assert set(coco.getAnnIds()) <= set(inst.getAnnIds(catIds=[1]))
