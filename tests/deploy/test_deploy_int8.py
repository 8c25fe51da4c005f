"""INT8 static post-training quantization of the exported graph
(``mmconvplug export --int8``): QDQ, per-channel weights, calibrated on
training images through the test pipeline; the weight-range table.

Fast tests on the tiny SSD and DeepLabv3+ with DO-Conv, folded; the metric
of the INT8 model beside fp32 on a trained SSD is the slow test.
"""
import json

import numpy as np
import pytest
import torch
from deploy_tiny_models import build_model, case_config, make_case_data

from mmconvplug.cli import export as export_command
from mmconvplug.cli import standalone_main
from mmconvplug.deploy import export_model_onnx, open_session
from mmconvplug.deploy.quantize import (
    calibration_batches,
    compare_weight_ranges,
    quantize_int8,
    weight_range_table,
)
from mmconvplug.fold import fold_model

onnx = pytest.importorskip('onnx', reason='pip install mmconvplug[deploy]')
pytest.importorskip('onnxruntime', reason='pip install mmconvplug[deploy]')

SHAPES = {'ssd': (128, 128), 'deeplabv3plus': (64, 128)}


def _exported(case, tmp_path):
    root = make_case_data(case, str(tmp_path / 'data'))
    cfg = case_config(case, root)
    folded = fold_model(build_model(cfg).eval()).eval()
    out = str(tmp_path / f'{case}.onnx')
    export_model_onnx(folded, torch.randn(2, 3, *SHAPES[case]), out)
    return cfg, folded, out


@pytest.mark.parametrize('case', sorted(SHAPES))
def test_int8_graph_is_qdq_per_channel_and_close_to_fp32(case, tmp_path):
    cfg, folded, fp32 = _exported(case, tmp_path)
    calibration = calibration_batches(cfg, folded, num_images=32)
    # the tiny set has 2 training images: all are used, and it says so
    assert len(calibration.batches) == 2
    assert 'the training set has 2; 32 were asked for' in calibration.note
    int8 = quantize_int8(fp32, str(tmp_path / 'int8.onnx'),
                         calibration.batches)
    graph = onnx.load(int8).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count('QuantizeLinear') > 10 and \
        ops.count('DequantizeLinear') > 10
    # every conv's weight is dequantized per output channel (axis 0)
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == 'Conv']
    assert convs
    for conv in convs:
        dq = producers[conv.input[1]]
        assert dq.op_type == 'DequantizeLinear'
        axis = [a.i for a in dq.attribute if a.name == 'axis']
        scale = onnx.numpy_helper.to_array(inits[dq.input[1]])
        weight = onnx.numpy_helper.to_array(inits[dq.input[0]])
        assert weight.dtype == np.int8 and axis in ([], [0])
        assert scale.shape == (weight.shape[0], )
    fp32_session, int8_session = open_session(fp32), open_session(int8)
    for batch in calibration.batches + [np.concatenate(
            calibration.batches * 2)[:3]]:
        ref, got = fp32_session(batch), int8_session(batch)
        assert [o.shape for o in got] == [o.shape for o in ref]
        for r, g in zip(ref, got):
            # INT8 noise, measured: relative error 0.01-0.08 of each
            # output's scale on these models; 0.25 would mean a wrong
            # scale or a broken graph, not rounding.
            assert np.abs(g - r).max() / np.abs(r).max() < 0.25


def test_calibration_uses_the_test_pipeline(tmp_path):
    root = make_case_data('ssd', str(tmp_path / 'data'))
    cfg = case_config('ssd', root)
    model = build_model(cfg)
    first = calibration_batches(cfg, model, 2)
    again = calibration_batches(cfg, model, 2)
    # the training pipeline flips and distorts at random; the test one
    # does not: the same images twice, at the test Resize's 128x128
    for a, b in zip(first.batches, again.batches):
        assert a.shape == (1, 3, 128, 128)
        np.testing.assert_array_equal(a, b)
    assert first.note == 'calibrated on 2 training images'
    with pytest.raises(ValueError, match='num_images must be >= 1'):
        calibration_batches(cfg, model, 0)


def test_weight_range_table_equals_a_direct_computation():
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(
            [[1.0, -2.0], [0.5, 0.25], [-8.0, 4.0]]).view(3, 2, 1, 1))
    (row, ) = weight_range_table(model)
    assert (row.name, row.shape) == ('0', (3, 2, 1, 1))
    assert (row.min, row.max) == (-8.0, 4.0)
    assert (row.channel_absmax_min, row.channel_absmax_median,
            row.channel_absmax_max) == (0.5, 2.0, 8.0)
    assert row.spread == 4.0
    table = compare_weight_ranges(model, model, names=('plain', 'DO-Conv'))
    assert 'DO-Conv spread' in table and '4.00' in table


def test_quantize_refuses_missing_input_and_existing_output(tmp_path):
    with pytest.raises(FileNotFoundError, match='No ONNX model'):
        quantize_int8(str(tmp_path / 'none.onnx'), str(tmp_path / 'o.onnx'),
                      [np.zeros((1, 3, 8, 8), np.float32)])
    existing = tmp_path / 'exists.onnx'
    existing.write_bytes(b'')
    with pytest.raises(FileExistsError, match='already exists'):
        quantize_int8(str(existing), str(existing),
                      [np.zeros((1, 3, 8, 8), np.float32)])


@pytest.mark.slow
def test_int8_metric_beside_fp32_on_a_trained_ssd(trained_model, tmp_path,
                                                   capsys):
    config, checkpoint, _ = trained_model('ssd')
    out = str(tmp_path / 'ssd.onnx')
    assert standalone_main(export_command, [
        config, checkpoint, out, '--eval', '--int8', '--calib', '16'
    ]) == 0
    printed = capsys.readouterr().out
    assert 'calibrated on 16 training images' in printed
    assert 'weight range per layer' in printed
    result = json.load(open(str(tmp_path / 'ssd.eval.json')))['backends']
    fp32 = result['onnxruntime']['metrics']['pascal_voc/mAP']
    int8 = result['onnxruntime-int8']['metrics']['pascal_voc/mAP']
    assert fp32 >= 0.4
    # a working INT8 model keeps most of the metric (the docs table has
    # the measured drops); a broken one falls to ~0
    assert int8 >= 0.5 * fp32, (fp32, int8)
