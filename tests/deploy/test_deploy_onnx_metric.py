"""The metric re-measured on the exported model (``mmconvplug export
--eval``), on tiny models trained until it is well above chance.

For each family (SSD, DeepLabv3+, Faster / Mask / Keypoint R-CNN with
DO-Conv, folded) the config's test dataloader and stock evaluator run
through onnxruntime beside PyTorch; the metrics must agree to 1e-3 and the
per-image predictions closely (the tolerances below). With random weights
both sides would score about 0 and the comparison could not fail, hence the
training and the floor on the metric.
"""
import json
import os.path as osp

import pytest
from deploy_trained_models import CASES

from mmconvplug.cli import export as export_command
from mmconvplug.cli import standalone_main

pytest.importorskip('onnxruntime', reason='pip install mmconvplug[deploy]')
pytestmark = pytest.mark.slow

#: Per-image agreement bounds: boxes in original-image pixels, scores,
#: fraction of mask / label-map pixels, keypoints in pixels.
MAX_BOX_ERROR = 1e-2
MAX_SCORE_ERROR = 1e-4
MAX_PIXEL_DISAGREEMENT = 1e-3
MAX_KEYPOINT_ERROR = 1e-2


@pytest.mark.parametrize('case', sorted(CASES))
def test_onnx_metric_equals_pytorch(case, trained_model, tmp_path, capsys):
    config, checkpoint, val = trained_model(case)
    spec = CASES[case]
    if val:  # well above chance (Faster R-CNN: Mask R-CNN's weights)
        assert val[spec.metric] >= spec.floor, val

    out = str(tmp_path / f'{case}.onnx')
    assert standalone_main(export_command,
                           [config, checkpoint, out, '--eval']) == 0
    printed = capsys.readouterr().out
    assert 'pytorch' in printed and 'onnxruntime' in printed
    result = json.load(open(str(tmp_path / f'{case}.eval.json')))
    pytorch = result['backends']['pytorch']
    onnx = result['backends']['onnxruntime']
    assert set(onnx['metrics']) == set(pytorch['metrics'])
    assert pytorch['metrics'][spec.metric] >= spec.floor
    for key, value in pytorch['metrics'].items():
        assert onnx['metrics'][key] == pytest.approx(value, abs=1e-3), key
    agreement = onnx['agreement']
    assert agreement['num_images'] == spec.num_val
    assert agreement['images_differing'] == 0
    assert agreement['max_box_error'] <= MAX_BOX_ERROR
    assert agreement['max_score_error'] <= MAX_SCORE_ERROR
    assert agreement['mask_pixel_disagreement'] <= MAX_PIXEL_DISAGREEMENT
    assert agreement['label_map_disagreement'] <= MAX_PIXEL_DISAGREEMENT
    assert agreement['max_keypoint_error'] <= MAX_KEYPOINT_ERROR
    for path in result['files'].values():
        assert osp.isfile(path)
