"""Conformance: every unfolded variant exports at ONNX opset 11 and up.

mmdeploy exports at opset 11 by default. Each variant is exported with the
TorchScript exporter (``dynamo=False``, as
:mod:`mmconvplug.deploy.onnx_export` does) at opset 11 and at the newest
opset the installed torch supports, and onnxruntime's output is checked
against eager at other batch sizes. Outside that range the exporter
refuses, naming the opset needed.
See ``docs/conformance.md``.
"""
import pytest
from test_conv_contract import VARIANTS, build, inputs

from mmconvplug.convs.cond_conv import COND_CONV_STRATEGIES
from mmconvplug.deploy.onnx_export import (
    MIN_ONNX_OPSET,
    check_onnx,
    newest_onnx_opset,
    onnx_bytes,
)

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

#: Largest relative error of onnxruntime against eager (float32).
TOLERANCE = 1e-4


def check_exports_and_matches(layer, opset):
    example = inputs(layer, batch=2)
    data, _ = onnx_bytes(layer, example, opset_version=opset)
    import onnx
    graph = onnx.load_from_string(data)
    assert max(o.version for o in graph.opset_import
               if o.domain in ('', 'ai.onnx')) == opset
    checks = check_onnx(data, layer, [inputs(layer, batch=n)
                                      for n in (1, 3)])
    assert max(c.max_rel_error for c in checks) <= TOLERANCE, checks
    return graph


@pytest.mark.parametrize('opset', [MIN_ONNX_OPSET, newest_onnx_opset()])
@pytest.mark.parametrize('name', VARIANTS)
def test_exports_at_the_oldest_and_newest_opset(name, opset):
    check_exports_and_matches(build(name).eval(), opset)


@pytest.mark.parametrize('strategy', COND_CONV_STRATEGIES)
def test_every_cond_conv_strategy_exports_at_opset_11(strategy):
    layer = build('CondConv').eval()
    layer.strategy = strategy
    graph = check_exports_and_matches(layer, MIN_ONNX_OPSET)
    assert 'Einsum' not in {node.op_type for node in graph.graph.node}


@pytest.mark.parametrize('name', VARIANTS)
def test_below_opset_11_is_refused_naming_the_opset_needed(name):
    layer = build(name).eval()
    with pytest.raises(ValueError, match='opset 10.*opset_version=11'):
        onnx_bytes(layer, inputs(layer), opset_version=MIN_ONNX_OPSET - 1)
    # a folded (plain) model is not a variant: torch decides alone
    if layer.foldable:
        onnx_bytes(layer.fold(), inputs(layer), opset_version=10)


@pytest.mark.parametrize('name', VARIANTS)
def test_beyond_the_newest_opset_is_refused_naming_it(name):
    newest = newest_onnx_opset()
    assert newest >= 17  # torch >= 2.1
    layer = build(name).eval()
    with pytest.raises(ValueError, match=f'newest: opset {newest}.*'
                       f'opset_version={newest} or older'):
        onnx_bytes(layer, inputs(layer), opset_version=newest + 1)
