"""Published 14-keypoint files (CrowdPose's layout, AIC's K) load and score
as they are: no ``area``, CrowdPose's own ``num_keypoints``.

Ground truth fed back as predictions must score keypoint AP 1.0 with K=14,
and the dataset and the metric must fill ``area`` by the same rule.
"""
import json

import numpy as np
import pytest
import torch
from kpt_crowdpose_data import (
    HEIGHT,
    NUM_KEYPOINTS,
    WIDTH,
    write_crowdpose_style,
)
from mmdet.datasets import CocoDataset
from mmengine.structures import InstanceData

from mmconvplug.keypoint import (
    AREA_FROM_BOX_FACTOR,
    AicKeypointDataset,
    CocoKeypointDataset,
    CocoKeypointMetric,
    CrowdPoseKeypointDataset,
    KeypointCountError,
    area_from_box,
)

DATASETS_K14 = [CrowdPoseKeypointDataset, AicKeypointDataset]


@pytest.fixture()
def crowdpose(tmp_path):
    return write_crowdpose_style(str(tmp_path))


def _dataset(files, cls=CrowdPoseKeypointDataset, **kwargs):
    return cls(data_root=files['root'],
               ann_file='annotations/crowdpose_test.json',
               data_prefix=dict(img='images/'), test_mode=True, pipeline=[],
               **kwargs)


def test_stock_coco_dataset_needs_the_area_the_file_lacks(crowdpose):
    """Why the dataset fills ``area``: mmdet's parser reads it."""
    with pytest.raises(KeyError, match='area'):
        CocoDataset(data_root=crowdpose['root'],
                    ann_file='annotations/crowdpose_test.json',
                    data_prefix=dict(img='images/'), test_mode=True,
                    metainfo=dict(classes=('person', )), pipeline=[])


def test_area_rule_is_mmposes_clipped_box_times_0_53():
    assert AREA_FROM_BOX_FACTOR == 0.53
    assert area_from_box([10, 20, 30, 40], 96, 80) == pytest.approx(
        30 * 40 * 0.53)
    # clipped to [0, w - 1] x [0, h - 1], as mmpose clips
    assert area_from_box([60, 8, 40, 64], 96, 80) == pytest.approx(
        35 * 64 * 0.53)
    assert area_from_box([-5, -5, 10, 10], 96, 80) == pytest.approx(
        5 * 5 * 0.53)
    # never below 1 (a box outside the image, a sliver)
    assert area_from_box([200, 200, 5, 5], 96, 80) == 1.0
    assert area_from_box([3, 3, 1, 1], 96, 80) == 1.0


def test_crowdpose_file_loads_with_k14_and_its_own_num_keypoints(crowdpose):
    dataset = _dataset(crowdpose)
    assert len(dataset) == 3
    raw = {a['id']: a for a in
           json.load(open(crowdpose['ann_file']))['annotations']}
    first = dataset.get_data_info(0)
    assert first['flip_indices'] == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10,
                                     12, 13]
    persons = first['instances']
    assert [p['keypoints'].shape for p in persons] == [(14, 2), (14, 2)]
    for person, ann_id in zip(persons, (11, 12)):
        flags = np.asarray(raw[ann_id]['keypoints'][2::3])
        # every labelled joint is a target, head and neck included ...
        np.testing.assert_array_equal(person['keypoints_visible'], flags > 0)
        # ... while num_keypoints is the file's (body joints only)
        assert person['num_keypoints'] == raw[ann_id]['num_keypoints']
        assert person['num_keypoints'] == (flags > 0).sum() - 2
        x, y, w, h = raw[ann_id]['bbox']
        assert person['area'] == pytest.approx(
            area_from_box([x, y, w, h], WIDTH, HEIGHT))
    assert persons[1]['area'] == pytest.approx(35 * 64 * 0.53)

    nothing, head_only = dataset.get_data_info(1)['instances']
    assert nothing['keypoints_visible'].sum() == 0
    # the file says 0 keypoints (head and neck do not count): no targets
    assert head_only['num_keypoints'] == 0
    assert head_only['keypoints_visible'].sum() == 0
    assert (np.asarray(raw[22]['keypoints'][2::3]) > 0).sum() == 2
    assert dataset.get_data_info(2)['instances'] == []


def test_num_keypoints_is_counted_from_the_flags_only_where_absent(tmp_path):
    files = write_crowdpose_style(str(tmp_path), drop_num_keypoints=True)
    persons = _dataset(files).get_data_info(0)['instances']
    raw = json.load(open(files['ann_file']))['annotations']
    assert 'num_keypoints' not in raw[0]
    for person, ann in zip(persons, raw):
        labelled = int((np.asarray(ann['keypoints'][2::3]) > 0).sum())
        assert person['num_keypoints'] == labelled
        assert person['keypoints_visible'].sum() == labelled
    head_only = _dataset(files).get_data_info(1)['instances'][1]
    assert head_only['num_keypoints'] == 2  # no field: the flags decide


def _gt_as_predictions(dataset):
    k = dataset.num_keypoints
    samples = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        persons = [i for i in info['instances'] if not i['ignore_flag']]
        num = len(persons)
        has_kpts = [p['keypoints_visible'].sum() > 0 for p in persons]
        pred = InstanceData(
            bboxes=torch.tensor([p['bbox'] for p in persons],
                                dtype=torch.float32).reshape(num, 4),
            scores=torch.tensor([1.0 if k else 0.5 for k in has_kpts]),
            labels=torch.zeros(num, dtype=torch.long),
            keypoints=torch.tensor(np.array(
                [p['keypoints'] for p in persons])).reshape(num, k, 2),
            keypoint_scores=torch.tensor(np.array(
                [p['keypoints_visible'] for p in persons])).reshape(num, k))
        samples.append(
            dict(img_id=info['img_id'],
                 ori_shape=(info['height'], info['width']),
                 pred_instances=pred.to_dict(),
                 instances=info['instances']))
    return samples


@pytest.mark.parametrize('use_ann_file', [True, False])
@pytest.mark.parametrize('cls', DATASETS_K14, ids=lambda c: c.__name__)
def test_ground_truth_as_predictions_scores_ap_one_with_k14(
        crowdpose, tmp_path, cls, use_ann_file):
    dataset = _dataset(crowdpose, cls)
    prefix = str(tmp_path / 'out' / 'results')
    metric = CocoKeypointMetric(
        ann_file=crowdpose['ann_file'] if use_ann_file else None,
        outfile_prefix=prefix)
    metric.dataset_meta = dataset.metainfo
    samples = _gt_as_predictions(dataset)
    assert samples[0]['pred_instances']['keypoints'].shape == (2, 14, 2)
    metric.process({}, samples)
    results = metric.evaluate(size=len(dataset))
    assert results['coco/keypoints_mAP'] == 1.0
    assert results['coco/bbox_mAP'] == 1.0
    dumped = json.load(open(prefix + '.keypoints.json'))
    assert {len(d['keypoints']) for d in dumped} == {3 * NUM_KEYPOINTS}


def test_metric_fills_area_as_the_dataset_and_keeps_num_keypoints(
        crowdpose):
    dataset = _dataset(crowdpose)
    metric = CocoKeypointMetric(ann_file=crowdpose['ann_file'])
    anns = metric._coco_api.anns
    by_corner = {tuple(a['bbox'][:2]): a for a in anns.values()}
    persons = [p for i in range(len(dataset))
               for p in dataset.get_data_info(i)['instances']]
    assert len(persons) == len(anns) == 4
    for person in persons:
        ann = by_corner[tuple(person['bbox'][:2])]
        assert ann['area'] == pytest.approx(person['area'])
        assert ann['num_keypoints'] == person['num_keypoints']
    # the field is followed where it disagrees with the flags (pycocotools
    # ignores num_keypoints == 0 persons in the keypoint evaluation)
    assert anns[22]['num_keypoints'] == 0
    assert anns[11]['num_keypoints'] == 9


def test_shifted_predictions_score_below_one_with_crowdpose_sigmas(
        crowdpose):
    dataset = _dataset(crowdpose)
    samples = _gt_as_predictions(dataset)
    for sample in samples:
        sample['pred_instances']['keypoints'] += 3.0
    aps = {}
    for name, sigmas in (('crowdpose', None), ('wide', [1.0] * 14)):
        metric = CocoKeypointMetric(ann_file=crowdpose['ann_file'],
                                    keypoint_sigmas=sigmas)
        metric.dataset_meta = dataset.metainfo
        metric.process({}, [dict(s) for s in samples])
        aps[name] = metric.evaluate(size=len(dataset))['coco/keypoints_mAP']
    assert aps['crowdpose'] < 1.0
    # pycocotools scored with the sigmas it was given
    assert aps['wide'] == 1.0


# --- the four lengths: K, keypoint_names, flip_indices, keypoint_sigmas ---


def test_metainfo_lists_of_different_lengths_name_all_of_them(crowdpose):
    from mmconvplug.keypoint import CROWDPOSE_KEYPOINT_NAMES
    with pytest.raises(KeypointCountError) as error:
        # names for 14, the COCO class's flip indices and sigmas for 17
        _dataset(crowdpose, CocoKeypointDataset,
                 metainfo=dict(keypoint_names=CROWDPOSE_KEYPOINT_NAMES))
    message = str(error.value)
    assert 'keypoint_names: 14' in message
    assert 'flip_indices: 17' in message
    assert 'keypoint_sigmas: 17' in message
    assert 'Fix:' in message and 'num_keypoints' in message


def test_a_17_keypoint_dataset_on_the_14_keypoint_file_names_the_file(
        crowdpose):
    with pytest.raises(KeypointCountError) as error:
        _dataset(crowdpose, CocoKeypointDataset)
    message = str(error.value)
    assert crowdpose['ann_file'] in message
    assert 'K in the file (category 1 keypoints): 14' in message
    for key in ('keypoint_names', 'flip_indices', 'keypoint_sigmas'):
        assert f'{key}: 17' in message


def test_annotation_with_another_k_names_the_annotation(crowdpose):
    data = json.load(open(crowdpose['ann_file']))
    del data['categories'][0]['keypoints']
    data['annotations'][1]['keypoints'] += [5, 5, 2]
    json.dump(data, open(crowdpose['ann_file'], 'w'))
    with pytest.raises(KeypointCountError,
                       match=r'K in the file \(annotation 12\): 15'):
        _dataset(crowdpose)


def test_metric_names_predictions_metainfo_sigmas_and_file(crowdpose):
    dataset = _dataset(crowdpose)
    samples = _gt_as_predictions(dataset)
    for sample in samples:  # a 17-keypoint model's output
        pred = sample['pred_instances']
        n = len(pred['keypoints'])
        pred['keypoints'] = torch.zeros(n, 17, 2)
        pred['keypoint_scores'] = torch.zeros(n, 17)
    metric = CocoKeypointMetric(ann_file=crowdpose['ann_file'])
    metric.dataset_meta = dataset.metainfo
    metric.process({}, samples)
    with pytest.raises(KeypointCountError) as error:
        metric.evaluate(size=len(dataset))
    message = str(error.value)
    for part in ('K (predictions: keypoint_head.num_keypoints): 17',
                 'keypoint_names: 14', 'flip_indices: 14',
                 'keypoint_sigmas: 14', 'K in the file (ann_file): 14'):
        assert part in message


def test_metric_sigmas_argument_of_another_length(crowdpose):
    dataset = _dataset(crowdpose)
    metric = CocoKeypointMetric(ann_file=crowdpose['ann_file'],
                                keypoint_sigmas=[0.05] * 17)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, _gt_as_predictions(dataset))
    with pytest.raises(KeypointCountError,
                       match=r'keypoint_sigmas \(metric argument\): 17'):
        metric.evaluate(size=len(dataset))


def test_keypoints_not_in_triplets_are_refused(crowdpose):
    data = json.load(open(crowdpose['ann_file']))
    data['annotations'][1]['keypoints'] += [5, 5]
    json.dump(data, open(crowdpose['ann_file'], 'w'))
    with pytest.raises(ValueError,
                       match='annotation 12 .* has 44 keypoint values, not '
                       'a multiple of 3'):
        _dataset(crowdpose)
