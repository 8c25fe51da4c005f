"""End to end with K=14: the tiny CrowdPose-layout set (no ``area``,
CrowdPose's own ``num_keypoints``) trains, folds and tests.

``tools/train.py`` trains the tiny Keypoint R-CNN with DO-Conv for a few
iterations and validates the trained model; ``tools/fold.py`` folds it;
``tools/test.py`` tests the folded checkpoint with the deploy config. The
folded model must give the trained one's predictions (boxes, scores,
keypoints) and APs, with (N, 14, 2) keypoints.
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from e2e_tiny_runs import load_tool, read_scalars, tiny_config, train_losses
from mmengine.fileio import load

from mmconvplug.datagen import make_tiny_crowdpose

pytestmark = pytest.mark.slow

CONFIG = 'keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_crowdpose.py'
ITERS = 6
METRICS = ('coco/bbox_mAP', 'coco/keypoints_mAP')


def logged_test_metrics(work_dir):
    """The metrics mmengine's LoggerHook dumped after the test epoch."""
    (path, ) = [p for p in glob.glob(osp.join(work_dir, '*', '*.json'))
                if not p.endswith('scalars.json')]
    with open(path) as f:
        return json.loads(f.read().splitlines()[-1])


def test_tiny_crowdpose_trains_folds_and_tests_with_14_keypoints(tmp_path):
    data_root = str(tmp_path / 'data' / 'crowdpose')
    written = make_tiny_crowdpose(data_root, num_train=4, num_val=2,
                                  size=(80, 80))
    assert 'area' not in load(written['keypoints_val'])['annotations'][0]
    work = tmp_path / 'work'
    work.mkdir()
    config = tiny_config(CONFIG, data_root, str(work), ITERS,
                         conv_cfg=dict(type='DOConv'), fold_hook=False,
                         batch_size=2)
    assert load_tool('train').main([config, '--work-dir', str(work)]) == 0
    records = read_scalars(str(work))
    losses = [r['loss_keypoint'] for r in records if 'loss_keypoint' in r]
    assert losses and all(np.isfinite(losses))
    assert all(np.isfinite(train_losses(records)))
    (trained, ) = [r for r in records if METRICS[1] in r]

    folded = str(tmp_path / 'deploy' / 'folded.pth')
    assert load_tool('fold').main(
        [config, osp.join(str(work), f'iter_{ITERS}.pth'), folded]) == 0
    deploy_config = folded[:-4] + '.py'
    assert 'DOConv' not in open(deploy_config).read()
    out = str(tmp_path / 'folded.pkl')
    assert load_tool('test').main(
        [deploy_config, folded, '--work-dir', str(tmp_path / 'test'),
         '--out', out]) == 0
    predictions = load(out)
    assert len(predictions) == 2
    for prediction in predictions:
        pred = prediction['pred_instances']
        assert pred['keypoints'].shape == (len(pred['scores']), 14, 2)
        assert pred['keypoint_scores'].shape == (len(pred['scores']), 14)
    # The fold is exact: the trained (DO-Conv) model's own predictions are
    # the folded ones, box for box and joint for joint (a minute-trained
    # model's AP is near 0, so equal APs alone would prove little).
    trained_out = str(tmp_path / 'trained.pkl')
    assert load_tool('test').main(
        [config, osp.join(str(work), f'iter_{ITERS}.pth'), '--work-dir',
         str(tmp_path / 'test_trained'), '--out', trained_out]) == 0
    compared = 0
    for ref, got in zip(load(trained_out), predictions):
        ref, got = ref['pred_instances'], got['pred_instances']
        assert len(ref['scores']) == len(got['scores'])
        for key in ('bboxes', 'scores', 'keypoints', 'keypoint_scores'):
            np.testing.assert_allclose(np.asarray(got[key]),
                                       np.asarray(ref[key]), rtol=0,
                                       atol=1e-3, err_msg=key)
        compared += len(ref['scores'])
    assert compared > 0
    tested = logged_test_metrics(str(tmp_path / 'test'))
    for key in METRICS:
        assert 0.0 <= tested[key] <= 1.0
        assert tested[key] == pytest.approx(trained[key], abs=1e-3), key
