"""ONNX export with a dynamic batch axis: folded tiny SSD and DeepLabv3+.

The models are built from the demo configs with DO-Conv in the backbone,
folded, exported in ``mode='tensor'`` (raw head outputs) traced at batch 2,
and run in onnxruntime at batch 1 and 3 against the eager model (relative
1e-4). The unfolded CondConv path (CondConv cannot fold; tracing is how it
deploys) is exported the same way.
"""
import os.path as osp
import sys

import pytest
import torch
from deploy_tiny_models import REPO, build_model, case_config

from mmconvplug.deploy import export_onnx
from mmconvplug.fold import fold_model

onnx = pytest.importorskip('onnx', reason='pip install mmconvplug[deploy]')
pytest.importorskip('onnxruntime', reason='pip install mmconvplug[deploy]')

SHAPES = {'ssd': (128, 128), 'deeplabv3plus': (64, 128)}


def _export(model, shape, path):
    example = torch.randn(2, 3, *shape)
    export = export_onnx(model, example, path, check_batch_sizes=(1, 3))
    graph = onnx.load(path).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    for output in graph.output:
        assert output.type.tensor_type.shape.dim[0].dim_param == 'batch'
    return export


@pytest.mark.parametrize('case', sorted(SHAPES))
def test_folded_model_exports_with_dynamic_batch(tmp_path, case):
    cfg = case_config(case, 'unused/')
    folded, report = fold_model(build_model(cfg).eval(), return_report=True)
    assert report.folded and not report.kept
    path = str(tmp_path / f'{case}.onnx')
    export = _export(folded, SHAPES[case], path)

    assert [c.batch_size for c in export.checks] == [1, 3]
    for check in export.checks:
        assert check.max_rel_error < 1e-4, str(check)
    # SSD: class scores and box deltas of 5 levels; DeepLabv3+: the logits
    assert len(export.output_names) == (10 if case == 'ssd' else 1)
    with pytest.raises(FileExistsError, match='already exists'):
        export_onnx(folded, torch.randn(2, 3, *SHAPES[case]), path)


def test_unfolded_condconv_model_exports_with_dynamic_batch(tmp_path):
    cfg = case_config('ssd', 'unused/',
                      conv_cfg=dict(type='CondConv', num_experts=2))
    model = build_model(cfg).eval()
    _, report = fold_model(model, return_report=True)
    assert {k.type for k in report.kept} == {'CondConv'}
    export = _export(model, SHAPES['ssd'], str(tmp_path / 'condconv.onnx'))
    for check in export.checks:
        assert check.max_rel_error < 1e-4, str(check)


def test_a_batch_dependent_layer_is_refused_and_nothing_written(tmp_path):
    class BatchMean(torch.nn.Module):
        """int() bakes the traced batch size into the graph as a constant."""

        def forward(self, x):
            return x * int(x.shape[0])

    path = str(tmp_path / 'bad.onnx')
    with pytest.raises(ValueError, match='nothing was written'):
        export_onnx(BatchMean(), torch.randn(2, 3, 8, 8), path)
    assert not osp.exists(path)


def test_export_onnx_tool_on_a_training_checkpoint(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'deploy_tests_export_onnx', osp.join(REPO, 'tools', 'export_onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    cfg = case_config('deeplabv3plus', 'unused/')
    config = str(tmp_path / 'config.py')
    cfg.dump(config)
    ckpt = str(tmp_path / 'trained.pth')
    torch.save({'meta': {}, 'state_dict': build_model(cfg).state_dict()},
               ckpt)
    out = str(tmp_path / 'model.onnx')
    args = [config, ckpt, out, '--shape', '64', '128']
    assert tool.main(args) == 0
    printed = capsys.readouterr().out
    assert 'DOConv' in printed and 'batch 3' in printed
    assert osp.isfile(out)
    assert tool.main(args) == 2  # never overwrites
    assert 'already exists' in capsys.readouterr().err


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    from mmconvplug.deploy import DeployDependencyError
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    path = str(tmp_path / 'conv.onnx')
    with pytest.raises(DeployDependencyError, match=r'mmconvplug\[deploy\]'):
        export_onnx(torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8), path)
    assert not osp.exists(path)


def test_two_stage_detector_is_refused_with_the_alternative(tmp_path):
    cfg = case_config('mask_rcnn', 'unused/')
    path = str(tmp_path / 'mask_rcnn.onnx')
    with pytest.raises(ValueError, match='two-stage detector.*export_model_onnx'):
        export_onnx(build_model(cfg).eval(), torch.randn(2, 3, 64, 64), path)
    assert not osp.exists(path)
