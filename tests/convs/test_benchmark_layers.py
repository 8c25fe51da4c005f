"""Smoke test of ``mmconvplug benchmark layers`` (``tools/benchmark.py
layers``): it runs and reports fields.

No timing assertions: the figures depend on the machine.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from cond_sc_dws_reference import cond_conv_reference

from mmconvplug.benchmarks import layers
from mmconvplug.benchmarks.baselines import (
    COND_CONV_PATH_ROWS,
    TIMM_COND_CONV,
    CondConvPath,
    timm_available,
)
from mmconvplug.cli import main as cli_main
from mmconvplug.convs import CondConv
from mmconvplug.convs.base import conv_variants

# (in, out, kernel, stride, padding, dilation, groups, bias)
COND_GEOMETRIES = [
    (3, 4, 3, 1, 1, 1, 1, True),
    (4, 6, 3, 2, 2, 2, 2, False),
    (2, 3, 1, (2, 3), 0, 1, 1, True),
]

ROW_FIELDS = {
    'shape', 'variant', 'params', 'params_plain', 'train_ms',
    'train_ms_plain', 'train_ratio', 'eval_unfolded_ms', 'eval_folded_ms',
    'eval_plain_ms', 'eval_unfolded_ratio', 'eval_folded_ratio',
    'peak_train_mb', 'peak_train_mb_plain', 'peak_train_ratio',
    'train_ratio_q1', 'train_ratio_q3', 'eval_unfolded_ratio_q1',
    'eval_unfolded_ratio_q3', 'repeats'
}
#: Rows of layers that compose their kernel also carry its time and floor.
COMPOSE_FIELDS = {'compose_ms', 'compose_floor_ms', 'compose_floor_ratio',
                  'compose_floor_ratio_q1', 'compose_floor_ratio_q3'}


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_benchmark_layers_quick_run_writes_json(tmp_path, restore_threads,
                                                capsys):
    out = tmp_path / 'layers.json'
    assert cli_main(['benchmark', 'layers', '--quick', '--threads', '1',
                     '--json', str(out)]) == 0
    table = capsys.readouterr().out
    assert 'DOConv' in table and 'RefConv' in table
    report = json.loads(out.read_text())
    assert report['meta']['shapes'] == 'quick'
    assert 'memory timeline' in report['meta']['memory']
    rows = report['results']
    measured = {row['variant'] for row in rows if 'error' not in row}
    assert {'DOConv', 'RefConv'} <= measured
    assert set(report['meta']['variants']) >= set(conv_variants())
    assert len(rows) == len(layers.QUICK_SHAPES) * len(
        report['meta']['variants'])
    for row in rows:
        if 'error' in row:
            continue
        assert ROW_FIELDS <= set(row), row['variant']
        assert row['train_ratio'] > 0 and row['peak_train_mb'] > 0
        assert row['train_ratio_q1'] <= row['train_ratio'] <= \
            row['train_ratio_q3']
        assert (row['variant'] in ('DOConv', 'RefConv')) == \
            (COMPOSE_FIELDS <= set(row)), row['variant']
        if row['variant'] in ('DOConv', 'RefConv'):
            assert row['compose_ms'] > 0 and row['compose_floor_ms'] > 0
            assert row['compose_floor_ratio_q1'] <= \
                row['compose_floor_ratio'] <= row['compose_floor_ratio_q3']
            assert row['eval_folded_ratio'] is not None
            assert row['params_plain'] == row['shape']['in_channels'] * row[
                'shape']['out_channels'] * 9


def test_the_composition_step_is_the_kernel_gradient():
    """The composition timed alone is ``compose_kernel`` forward and
    backward: the gradients it leaves are those of the kernel, for ours
    and the public DO-Conv alike."""
    shape = layers.ConvShape('s', 1, 4, 6, 5, 5)
    grad_kernel = torch.randn(6, 4, 3, 3)
    for name in ('DOConv', 'RefConv', layers.PUBLIC_DO_CONV):
        layer = layers.build_layer(shape, name)
        layers.composition_step(layer, grad_kernel)
        got = [p.grad.clone() for p in layer.parameters()
               if p.grad is not None]
        expected = torch.autograd.grad(
            layer.compose_kernel(),
            [p for p in layer.parameters() if p.requires_grad],
            grad_kernel, allow_unused=True)
        assert got and len(got) == len([e for e in expected
                                        if e is not None]), name
        for g, e in zip(got, [e for e in expected if e is not None]):
            torch.testing.assert_close(g, e)


def test_memory_floor_is_two_clones_and_one_add():
    samples = {'floor:clone': [1.0, 2.0], 'floor:add': [0.5, 0.25]}
    assert layers.memory_floor(samples) == [2.5, 4.25]
    calls = layers.memory_floor_calls(torch.zeros(3, 2))
    assert set(calls) == {'floor:clone', 'floor:add'}
    assert calls['floor:clone']().shape == (3, 2)


def test_timm_condconv_row_exactly_when_timm_is_installed():
    rows = layers.selected_variants(None, public_baseline=False)
    assert (TIMM_COND_CONV in rows) == timm_available()
    assert layers.selected_variants(['CondConv'], False) == ['CondConv']
    with pytest.raises(ValueError, match='unknown'):
        layers.selected_variants(['NoSuchConv'], False)


@pytest.mark.skipif(not timm_available(), reason='timm is not installed')
def test_timm_condconv_baseline_runs_on_a_grouped_shape():
    shape = layers.ConvShape('dw', 2, 8, 8, 6, 6, groups=8)
    layer = layers.build_layer(shape, TIMM_COND_CONV)
    x = torch.randn(2, 8, 6, 6)
    assert layer(x).shape == (2, 8, 6, 6)


def test_benchmark_layers_rejects_bad_repeats(capsys):
    with pytest.raises(SystemExit):
        cli_main(['benchmark', 'layers', '--repeats', '0'])
    assert '--repeats must be >= 1' in capsys.readouterr().err


def test_benchmark_tool_dispatches_to_layers(monkeypatch, capsys):
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', root / 'tools' / 'benchmark.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', ['benchmark.py', 'layers', '--help'])
    with pytest.raises(SystemExit) as exit_info:
        tool.main()
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert '--shapes' in usage and 'imagenet' in usage


@pytest.mark.parametrize('path', CondConvPath.PATHS)
def test_cond_conv_path_rows_match_the_float64_reference(path):
    """The baselines (and the layer's two paths) behind ``CondConv-<path>``
    rows compute CondConv exactly."""
    for cin, cout, k, s, p, d, g, bias in COND_GEOMETRIES:
        layer = CondConv(cin, cout, k, stride=s, padding=p, dilation=d,
                         groups=g, bias=bias, num_experts=3).double()
        x = torch.randn(3, cin, 7, 5, dtype=torch.float64)
        expected = cond_conv_reference(
            x, layer.weight, layer.bias, layer.routing.weight,
            layer.routing.bias, layer.stride, layer.padding, layer.dilation,
            layer.groups)
        out = CondConvPath(layer, path)(x)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_cond_conv_path_rows_are_measured_when_named():
    names = ['CondConv-grouped', 'CondConv-unfold', 'CondConv-mix_outputs']
    assert layers.selected_variants(names, False) == names
    assert not set(COND_CONV_PATH_ROWS) & set(
        layers.selected_variants(None, False))
    shape = layers.QUICK_SHAPES[1]
    rows = layers.benchmark_shape(shape, names, repeats=1)
    assert [row['variant'] for row in rows] == names
    assert all('error' not in row and row['train_ratio'] > 0 for row in rows)


def test_eager_rows_run_the_same_layer_with_the_kernels_off(monkeypatch):
    """``DOConv-eager`` / ``RefConv-eager`` / ``CondConv-eager``: measured
    when named, never by default; the wrapped layer computes what the layer
    computes, and its compositions take the eager ops (the fused kernels
    are never asked)."""
    from mmconvplug.benchmarks.baselines import EAGER_OPS_ROWS, EagerOps
    from mmconvplug.convs import cond_conv_ops, cpu_kernels, do_conv_ops
    assert not set(EAGER_OPS_ROWS) & set(
        layers.selected_variants(None, False))
    names = ['DOConv', 'RefConv', 'DOConv-eager', 'RefConv-eager']
    assert layers.selected_variants(names, False) == names
    shape = layers.QUICK_SHAPES[1]
    rows = layers.benchmark_shape(shape, names, repeats=1)
    assert all('error' not in row and row['compose_ms'] > 0 for row in rows)
    rows = layers.benchmark_shape(shape, ['CondConv', 'CondConv-eager'],
                                  repeats=1)
    assert all('error' not in row and row.get('compose_ms') is None
               for row in rows)

    # CondConv: the experts are mixed by the kernels outside the wrapper
    # only; the outputs agree.
    monkeypatch.setattr(cond_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 0)
    monkeypatch.setattr(cond_conv_ops, 'FUSED_MIN_THREADS', 1)
    torch.manual_seed(0)
    layer = layers.build_layer(shape, 'CondConv').double()
    x = torch.randn(2, shape.in_channels, 6, 5, dtype=torch.float64)
    asked = []
    real = cpu_kernels.usable
    monkeypatch.setattr(cpu_kernels, 'usable',
                        lambda *t: asked.append(real(*t)) or asked[-1])
    eager_out = EagerOps(layer)(x)
    assert asked and not any(asked)
    asked.clear()
    torch.testing.assert_close(eager_out, layer(x), rtol=0, atol=1e-12)
    assert any(asked)
    monkeypatch.undo()

    monkeypatch.setattr(do_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 0)
    for name in ('DOConv', 'RefConv'):
        torch.manual_seed(0)
        layer = layers.build_layer(shape, name).double()
        wrapped = EagerOps(layer)
        asked = []
        real = cpu_kernels.usable
        monkeypatch.setattr(cpu_kernels, 'usable',
                            lambda *t: asked.append(real(*t)) or asked[-1])
        kernel = wrapped.compose_kernel()
        assert asked and not any(asked)  # asked, and told no
        asked.clear()
        torch.testing.assert_close(kernel, layer.compose_kernel(), rtol=0,
                                   atol=1e-12)
        assert any(asked)  # outside the wrapper: the fused kernels
        monkeypatch.undo()
        monkeypatch.setattr(do_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 0)
