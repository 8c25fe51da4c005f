"""Dataset + metric on a real-format COCO keypoints file.

Feeding the ground truth back as predictions must give keypoint AP 1.0.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from kpt_test_data import write_keypoint_coco
from mmengine.structures import InstanceData

from mmconvplug.keypoint import CocoKeypointDataset, CocoKeypointMetric


@pytest.fixture()
def coco_kpts(tmp_path):
    return write_keypoint_coco(str(tmp_path))


def _dataset(files, test_mode=True, **kwargs):
    return CocoKeypointDataset(
        data_root=files['root'],
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=test_mode,
        pipeline=[],
        **kwargs)


def test_dataset_parses_keypoints_crowd_and_empty_persons(coco_kpts):
    dataset = _dataset(coco_kpts)
    assert len(dataset) == 3
    first = dataset.get_data_info(0)
    assert first['flip_indices'][1:3] == [2, 1]
    person = first['instances'][0]
    raw = json.load(open(coco_kpts['ann_file']))['annotations'][0]
    triplets = np.asarray(raw['keypoints'], dtype=np.float32).reshape(17, 3)
    np.testing.assert_array_equal(person['keypoints_visible'],
                                  triplets[:, 2] > 0)
    labelled = triplets[:, 2] > 0
    # Pixel indices -> pixel centres.
    np.testing.assert_allclose(person['keypoints'][labelled],
                               triplets[labelled, :2] + 0.5)

    second = dataset.get_data_info(1)['instances']
    assert [inst['ignore_flag'] for inst in second] == [0, 1]
    assert second[0]['keypoints_visible'].sum() == 0


def test_training_filter_drops_images_without_keypoints(coco_kpts):
    keep_all = _dataset(coco_kpts, test_mode=False,
                        filter_cfg=dict(min_keypoints_per_image=0))
    assert len(keep_all) == 3
    detectron2_like = _dataset(
        coco_kpts, test_mode=False,
        filter_cfg=dict(filter_empty_gt=True, min_keypoints_per_image=1))
    assert [detectron2_like.get_data_info(i)['img_id']
            for i in range(len(detectron2_like))] == [1]
    with pytest.raises(ValueError, match='min_keypoints_per_image'):
        _dataset(coco_kpts, test_mode=False,
                 filter_cfg=dict(min_keypoints_per_image=-1))


def _ground_truth_as_predictions(dataset):
    samples = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        persons = [i for i in info['instances'] if not i['ignore_flag']]
        num = len(persons)
        has_kpts = [p['keypoints_visible'].sum() > 0 for p in persons]
        pred = InstanceData(
            bboxes=torch.tensor([p['bbox'] for p in persons],
                                dtype=torch.float32).reshape(num, 4),
            # Persons without keypoints rank last: they cannot be matched in
            # the keypoint evaluation but are true boxes.
            scores=torch.tensor([1.0 if k else 0.5 for k in has_kpts]),
            labels=torch.zeros(num, dtype=torch.long),
            keypoints=torch.tensor(
                np.array([p['keypoints'] for p in persons])).reshape(
                    num, 17, 2),
            keypoint_scores=torch.tensor(
                np.array([p['keypoints_visible'] for p in persons])).reshape(
                    num, 17))
        samples.append(
            dict(img_id=info['img_id'],
                 ori_shape=(info['height'], info['width']),
                 pred_instances=pred.to_dict(),
                 instances=info['instances']))
    return samples


@pytest.mark.parametrize('use_ann_file', [True, False])
def test_ground_truth_as_predictions_scores_ap_one(coco_kpts, tmp_path,
                                                   use_ann_file):
    dataset = _dataset(coco_kpts)
    prefix = str(tmp_path / 'out' / 'results')
    metric = CocoKeypointMetric(
        ann_file=coco_kpts['ann_file'] if use_ann_file else None,
        outfile_prefix=prefix)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, _ground_truth_as_predictions(dataset))
    results = metric.evaluate(size=len(dataset))

    assert results['coco/keypoints_mAP'] == 1.0
    assert results['coco/keypoints_mAP_50'] == 1.0
    assert results['coco/bbox_mAP'] == 1.0
    dumped = json.load(open(prefix + '.keypoints.json'))
    assert len(dumped) == 3 and len(dumped[0]['keypoints']) == 51
    # Written back in COCO's pixel-index convention.
    raw = json.load(open(coco_kpts['ann_file']))['annotations'][0]
    assert dumped[0]['keypoints'][:2] == pytest.approx(raw['keypoints'][:2])


def test_shifted_predictions_lower_keypoint_ap(coco_kpts):
    dataset = _dataset(coco_kpts)
    metric = CocoKeypointMetric(ann_file=coco_kpts['ann_file'])
    metric.dataset_meta = dataset.metainfo
    samples = _ground_truth_as_predictions(dataset)
    for sample in samples:
        sample['pred_instances']['keypoints'] += 6.0
    metric.process({}, samples)
    results = metric.evaluate(size=len(dataset))
    assert results['coco/keypoints_mAP'] < 0.5
    assert results['coco/bbox_mAP'] == 1.0


def test_format_only_writes_keypoint_json(coco_kpts, tmp_path):
    dataset = _dataset(coco_kpts)
    prefix = str(tmp_path / 'submit')
    metric = CocoKeypointMetric(ann_file=coco_kpts['ann_file'],
                                format_only=True, outfile_prefix=prefix)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, _ground_truth_as_predictions(dataset))
    assert metric.evaluate(size=len(dataset)) == {}
    assert osp.exists(prefix + '.keypoints.json')
    assert osp.exists(prefix + '.bbox.json')


def test_bad_metric_settings_are_explained():
    with pytest.raises(ValueError, match='keypoint_metric_items'):
        CocoKeypointMetric(keypoint_metric_items=['mAP_s'])
    with pytest.raises(ValueError, match='max_keypoint_dets'):
        CocoKeypointMetric(max_keypoint_dets=0)


def test_pipeline_flip_uses_the_dataset_flip_indices(coco_kpts):
    def pipeline(flip_prob):
        return [
            dict(type='LoadImageFromFile'),
            dict(type='LoadKeypointAnnotations', with_bbox=True),
            dict(type='KeypointRandomFlip', prob=flip_prob),
            dict(type='PackKeypointDetInputs'),
        ]

    plain = CocoKeypointDataset(
        data_root=coco_kpts['root'],
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'), test_mode=True,
        pipeline=pipeline(0.0))[0]['data_samples'].gt_instances
    flipped = CocoKeypointDataset(
        data_root=coco_kpts['root'],
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'), test_mode=True,
        pipeline=pipeline(1.0))[0]['data_samples'].gt_instances
    names = CocoKeypointDataset.METAINFO['keypoint_names']
    left, right = names.index('left_wrist'), names.index('right_wrist')
    width = 96
    for person in range(len(plain)):
        assert flipped.keypoints_visible[person, left] == \
            plain.keypoints_visible[person, right]
        if plain.keypoints_visible[person, right]:
            assert flipped.keypoints[person, left, 0] == pytest.approx(
                width - plain.keypoints[person, right, 0])
            assert flipped.keypoints[person, left, 1] == pytest.approx(
                plain.keypoints[person, right, 1])
