"""Every config family exports: SSD, DeepLabv3+, Faster / Mask / Keypoint
R-CNN (folded DO-Conv, and CondConv unfolded), with dynamic batch, spatial
and RoI axes; the two-stage split runs the stock post-processing in Python
between the image graph and the RoI graphs.

Random-weight tiny models from the project's configs: what is checked here
is the export (graphs against eager, relative 1e-4 at batch 1 and 3 and at a
second input size) and that the deployed model's ``predict`` equals the
eager one on a real batch. The metric on trained checkpoints is
``test_deploy_onnx_metric.py``.
"""
import copy
import json

import pytest
import torch
from deploy_tiny_models import (
    build_model,
    case_config,
    first_batch,
    make_case_data,
)

from mmconvplug.deploy import export_model_onnx
from mmconvplug.deploy.backend_model import attach_graphs
from mmconvplug.deploy.evaluation import read_manifest
from mmconvplug.deploy.runtimes import open_session
from mmconvplug.fold import fold_model

onnx = pytest.importorskip('onnx', reason='pip install mmconvplug[deploy]')
pytest.importorskip('onnxruntime', reason='pip install mmconvplug[deploy]')

#: case -> (traced input size, the RoI graphs expected).
CASES = {
    'ssd': ((128, 128), []),
    'deeplabv3plus': ((64, 128), []),
    'faster_rcnn': ((96, 96), ['roi_bbox']),
    'mask_rcnn': ((96, 96), ['roi_bbox', 'roi_mask']),
    'keypoint_rcnn': ((96, 96), ['roi_bbox', 'roi_keypoint']),
}


def _config(case, data_root='unused/', conv_cfg=None):
    if case == 'faster_rcnn':
        cfg = case_config('mask_rcnn', data_root, conv_cfg)
        cfg.model.roi_head.mask_roi_extractor = None
        cfg.model.roi_head.mask_head = None
        cfg.test_evaluator.metric = ['bbox']
        return cfg
    return case_config(case, data_root, conv_cfg)


def _dims(value_info):
    return [d.dim_param or d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def _export(case, tmp_path, conv_cfg=None, **kwargs):
    cfg = _config(case, conv_cfg=conv_cfg)
    model = build_model(cfg).eval()
    folded, report = fold_model(model, return_report=True)
    shape, _ = CASES[case]
    out = str(tmp_path / f'{case}.onnx')
    export = export_model_onnx(folded.eval(), torch.randn(2, 3, *shape), out,
                               **kwargs)
    return cfg, folded, report, export


@pytest.mark.parametrize('case', sorted(CASES))
def test_every_family_exports_with_dynamic_axes(case, exported_tiny):
    cfg, _, report, export = exported_tiny(case, _export)
    assert report.folded and not report.kept
    assert sorted(export.files) == sorted(['image'] + CASES[case][1])
    # batch 1, batch 3, batch 1 at +32 px: every graph
    for name, checks in export.checks.items():
        assert len(checks) == 3, name
        for check in checks:
            assert check.max_rel_error < 1e-4, (name, str(check))
    image = onnx.load(export.files['image']).graph
    assert _dims(image.input[0]) == ['batch', 3, 'height', 'width']
    for name in CASES[case][1]:
        graph = onnx.load(export.files[name]).graph
        assert _dims(graph.input[-1]) == ['num_rois', 5]
        assert all(_dims(o)[0] == 'num_rois' for o in graph.output)
        ops = {node.op_type for node in graph.node}
        assert 'RoiAlign' in ops, ops
        (opset, ) = [o.version for o in onnx.load(export.files[name])
                     .opset_import if o.domain in ('', 'ai.onnx')]
        assert opset == export.opset >= 16
    manifest = json.load(open(export.manifest))
    assert manifest['family'] == {
        'ssd': 'single_stage', 'deeplabv3plus': 'segmentor'
    }.get(case, 'two_stage')
    assert set(manifest['graphs']) == set(export.files)


@pytest.mark.parametrize('case', ['ssd', 'mask_rcnn', 'keypoint_rcnn'])
def test_deployed_predict_equals_eager_on_a_real_batch(case, tmp_path,
                                                       exported_tiny):
    """The stock predict (NMS, proposal selection, mask pasting, keypoint
    decoding) over the graphs gives the eager model's detections."""
    data_case = 'mask_rcnn' if case == 'faster_rcnn' else case
    root = make_case_data(data_case, str(tmp_path / 'data'))
    cfg, folded, _, export = exported_tiny(case, _export)
    folded = copy.deepcopy(folded)
    cfg = _config(case, root)
    if 'rcnn' in cfg.model.test_cfg:  # random weights: keep low scores
        cfg.model.test_cfg.rcnn.score_thr = 0.0
        folded.roi_head.test_cfg.score_thr = 0.0
    manifest = read_manifest(export.manifest)
    sessions = {n: open_session(g['file'])
                for n, g in manifest['graphs'].items()}
    deployed = attach_graphs(
        build_model(cfg, seed=1), manifest['family'], sessions,
        {n: g['structure'] for n, g in manifest['graphs'].items()})
    batch = first_batch(cfg, 'val')
    with torch.no_grad():
        ref = folded.test_step(copy.deepcopy(batch))
        got = deployed.test_step(copy.deepcopy(batch))
    for r, g in zip(ref, got):
        r, g = r.pred_instances, g.pred_instances
        assert len(r) == len(g) > 0
        assert torch.equal(r.labels, g.labels)
        torch.testing.assert_close(g.bboxes, r.bboxes, rtol=0, atol=1e-2)
        torch.testing.assert_close(g.scores, r.scores, rtol=0, atol=1e-4)
        if 'masks' in r:
            assert (r.masks != g.masks).float().mean() < 1e-3
        if 'keypoints' in r:
            torch.testing.assert_close(g.keypoints, r.keypoints, rtol=0,
                                       atol=1e-2)


def test_deployed_model_runs_no_pytorch_layer(exported_tiny):
    """The host model's weights are NaN: a learned layer left in PyTorch
    would show."""
    cfg, _, _, export = exported_tiny('mask_rcnn', _export)
    manifest = read_manifest(export.manifest)
    host = build_model(cfg)
    attach_graphs(host, manifest['family'],
                  {n: open_session(g['file'])
                   for n, g in manifest['graphs'].items()},
                  {n: g['structure'] for n, g in manifest['graphs'].items()})
    weights = [p for n, p in host.named_parameters()
               if not n.startswith('data_preprocessor')]
    assert weights and all(torch.isnan(p).all() for p in weights)


def test_unfolded_condconv_two_stage_exports(tmp_path):
    _, _, report, export = _export(
        'faster_rcnn', tmp_path, conv_cfg=dict(type='CondConv',
                                               num_experts=2))
    assert {k.type for k in report.kept} == {'CondConv'}
    assert export.max_rel_error < 1e-4


def test_two_stage_below_opset_16_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match='opset 16 or newer'):
        _export('faster_rcnn', tmp_path, opset_version=13)
    assert not list(tmp_path.iterdir())


def test_single_stage_exports_at_opset_11(tmp_path):
    _, _, _, export = _export('ssd', tmp_path, opset_version=11)
    assert export.opset == 11 and export.max_rel_error < 1e-4


def test_existing_files_are_never_overwritten(tmp_path):
    _export('faster_rcnn', tmp_path)
    with pytest.raises(FileExistsError, match='already exists'):
        _export('faster_rcnn', tmp_path)


def test_traceable_roi_extractor_equals_the_stock_one():
    from mmconvplug.deploy.graphs import example_rois
    from mmconvplug.deploy.roi_extractor import TraceableRoIExtractor
    model = build_model(_config('mask_rcnn')).eval()
    stock = model.roi_head.bbox_roi_extractor
    # 800 px images: RoIs from 40 to 720 px fall on every FPN level
    feats = [torch.randn(2, 64, 800 // s, 800 // s) for s in (4, 8, 16, 32)]
    rois = example_rois(feats, (800, 800), 40,
                        torch.Generator().manual_seed(0))
    levels = stock.map_roi_levels(rois, len(feats))
    assert set(levels.tolist()) == {0, 1, 2, 3}
    with torch.no_grad():
        torch.testing.assert_close(TraceableRoIExtractor(stock)(feats, rois),
                                   stock(feats, rois), rtol=0, atol=0)


def test_a_module_that_is_no_detector_is_refused(tmp_path):
    with pytest.raises(ValueError, match='not a deployable model'):
        export_model_onnx(torch.nn.Conv2d(3, 4, 3).eval(),
                          torch.randn(2, 3, 8, 8), str(tmp_path / 'c.onnx'))
    assert not list(tmp_path.iterdir())


def test_a_manifest_with_a_missing_graph_is_refused(tmp_path):
    import os
    _, _, _, export = _export('faster_rcnn', tmp_path)
    os.remove(export.files['roi_bbox'])
    with pytest.raises(FileNotFoundError, match='a graph of'):
        read_manifest(export.manifest)
    (tmp_path / 'other.json').write_text('{"a": 1}')
    with pytest.raises(ValueError, match='not an mmconvplug deploy manifest'):
        read_manifest(str(tmp_path / 'other.json'))
