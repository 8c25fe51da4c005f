"""The second runtime: the exported graphs run under OpenVINO (CPU plugin,
f32) with outputs matching onnxruntime's.

Folded tiny SSD, DeepLabv3+ and Mask / Keypoint R-CNN (image and RoI graphs,
ONNX RoiAlign-16) with DO-Conv, and the unfolded CondConv SSD; each graph at
batch 1 and 3 (RoI graphs: 17 and 19 RoIs), then the stock predict over
OpenVINO against the one over onnxruntime on a real batch.
"""
import copy

import numpy as np
import pytest
import torch
from deploy_tiny_models import (
    build_model,
    case_config,
    first_batch,
    make_case_data,
)

from mmconvplug.deploy import export_model_onnx, open_session
from mmconvplug.deploy.evaluation import load_deployed_model
from mmconvplug.deploy.graphs import example_rois
from mmconvplug.fold import fold_model

pytest.importorskip('onnxruntime', reason='pip install mmconvplug[deploy]')
pytest.importorskip('openvino', reason='pip install mmconvplug[openvino]')

SHAPES = {'ssd': (128, 128), 'deeplabv3plus': (64, 128),
          'mask_rcnn': (96, 96), 'keypoint_rcnn': (96, 96)}
#: Largest relative error (max|ov - ort| / max|ort|) accepted. Measured
#: worst over these graphs: 1.6e-6 (the Mask R-CNN image graph); two float32
#: runtimes summing in other orders.
TOLERANCE = 1e-4


def _export(case, tmp_path, conv_cfg=None):
    cfg = case_config(case, 'unused/', conv_cfg)
    folded = fold_model(build_model(cfg).eval()).eval()
    export = export_model_onnx(folded, torch.randn(2, 3, *SHAPES[case]),
                               str(tmp_path / f'{case}.onnx'))
    return folded, export


def _relative(ref, got):
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-6))


def _inputs(name, session, batch, shape, generator):
    images = torch.randn(batch, 3, *shape, generator=generator)
    if name == 'image':
        return [images.numpy()]
    feats = [torch.randn(batch, 64, shape[0] // s, shape[1] // s,
                         generator=generator)
             for s in (4, 8, 16, 32)][:len(session.input_names) - 1]
    rois = example_rois(feats, shape, 16 + batch, generator)
    return [f.numpy() for f in feats] + [rois.numpy()]


@pytest.mark.parametrize('case', sorted(SHAPES) + ['condconv_ssd'])
def test_openvino_matches_onnxruntime(case, exported_tiny):
    conv_cfg = dict(type='CondConv', num_experts=2) \
        if case == 'condconv_ssd' else None
    name = 'ssd' if case == 'condconv_ssd' else case
    _, export = exported_tiny(name, _export, conv_cfg)
    generator = torch.Generator().manual_seed(0)
    for graph, path in export.files.items():
        ort, ov = open_session(path), open_session(path, 'openvino')
        assert ov.backend == 'openvino'
        assert ov.input_names == ort.input_names
        assert ov.output_names == ort.output_names
        for batch in (1, 3):
            arrays = _inputs(graph, ort, batch, SHAPES[name], generator)
            ref, got = ort(*arrays), ov(*arrays)
            assert [o.shape for o in got] == [o.shape for o in ref]
            worst = max(_relative(r, g) for r, g in zip(ref, got))
            assert worst < TOLERANCE, (graph, batch, worst)


@pytest.mark.parametrize('case', ['ssd', 'mask_rcnn'])
def test_predict_over_openvino_equals_onnxruntime(case, tmp_path,
                                                  exported_tiny):
    root = make_case_data(case, str(tmp_path / 'data'))
    _, export = exported_tiny(case, _export)
    cfg = case_config(case, root)
    if 'rcnn' in cfg.model.test_cfg:  # random weights: keep low scores
        cfg.model.test_cfg.rcnn.score_thr = 0.0
    batch = first_batch(cfg, 'val')
    results = {}
    for backend in ('onnxruntime', 'openvino'):
        model = load_deployed_model(cfg, export.manifest, backend)
        with torch.no_grad():
            results[backend] = model.test_step(copy.deepcopy(batch))
    for ref, got in zip(results['onnxruntime'], results['openvino']):
        ref, got = ref.pred_instances, got.pred_instances
        assert len(ref) == len(got) > 0
        assert torch.equal(ref.labels, got.labels)
        torch.testing.assert_close(got.bboxes, ref.bboxes, rtol=0,
                                   atol=1e-2)


def test_unknown_runtime_is_refused(exported_tiny):
    _, export = exported_tiny('ssd', _export)
    with pytest.raises(ValueError, match="Unknown runtime 'tensorrt'"):
        open_session(export.path, 'tensorrt')
