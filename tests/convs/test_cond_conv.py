"""CondConv: exact against the paper's per-example formula, both paths."""
import math

import pytest
import torch
from cond_sc_dws_reference import (
    MODEL_BUILDERS,
    cond_conv_reference,
    model_inputs,
    train_step,
)
from mmcv.cnn import ConvModule
from torch import nn

from mmconvplug.convs import CondConv
from mmconvplug.convs.cond_conv import COND_CONV_STRATEGIES

STRATEGIES = list(COND_CONV_STRATEGIES)

# (in, out, kernel, stride, padding, dilation, groups, bias)
GEOMETRIES = [
    (3, 4, 3, 1, 1, 1, 1, True),
    (4, 6, 3, 2, 2, 2, 2, False),
    (4, 4, (3, 1), (2, 1), (1, 0), 1, 4, True),
    (2, 3, 1, 1, 0, 1, 1, True),
    (3, 2, 1, (2, 3), 0, 1, 1, False),  # 1x1 with stride: batched matmul
]


def reference(layer, x):
    return cond_conv_reference(
        x, layer.weight, layer.bias, layer.routing.weight,
        layer.routing.bias, layer.stride, layer.padding, layer.dilation,
        layer.groups)


@pytest.mark.parametrize('strategy', STRATEGIES)
@pytest.mark.parametrize('geometry', GEOMETRIES)
def test_batch_matches_per_example_reference(geometry, strategy):
    cin, cout, k, s, p, d, g, bias = geometry
    layer = CondConv(cin, cout, k, stride=s, padding=p, dilation=d,
                     groups=g, bias=bias, num_experts=3,
                     strategy=strategy).double()
    x = torch.randn(3, cin, 7, 5, dtype=torch.float64)  # non-square
    out = layer(x)
    expected = reference(layer, x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize('strategy', ['unfold', 'grouped'])
def test_gradcheck(strategy):
    layer = CondConv(2, 2, 3, padding=1, groups=2, num_experts=2,
                     strategy=strategy).double()
    x = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    params = (layer.weight, layer.bias, layer.routing.weight)

    assert torch.autograd.gradcheck(layer, (x, ), fast_mode=True)
    # Gradients w.r.t. the parameters, through a functional call.
    names = ('weight', 'bias', 'routing.weight')
    tensors = tuple(p.detach().clone().requires_grad_() for p in params)

    def functional(*values):
        return torch.func.functional_call(layer, dict(zip(names, values)),
                                          (x.detach(), ))

    assert torch.autograd.gradcheck(functional, tensors, fast_mode=True)


def test_auto_strategy_follows_the_rule():
    layer = CondConv(512, 512, 3, padding=1, num_experts=4)
    # deep layer, small map (512 channels per 49 positions): unfold
    assert layer.choose_strategy(torch.empty(8, 512, 7, 7)) == 'unfold'
    # 512 channels per 196 positions: the grouped conv
    assert layer.choose_strategy(torch.empty(8, 512, 14, 14)) == 'grouped'
    # one example: a plain conv (the grouped path with one example)
    assert layer.choose_strategy(torch.empty(1, 512, 7, 7)) == 'grouped'
    # an empty batch: unfold (no conv has zero groups)
    assert layer.choose_strategy(torch.empty(0, 512, 7, 7)) == 'unfold'
    # depthwise: one output channel per group, never unfold
    depthwise = CondConv(512, 512, 3, padding=1, groups=512)
    assert depthwise.choose_strategy(torch.empty(8, 512, 7, 7)) == 'grouped'


def test_trace_replaces_batch_dependent_strategies():
    """grouped bakes the batch size into a trace; while tracing the layer
    computes the same with unfold."""
    for strategy in ('grouped', 'auto'):
        layer = CondConv(4, 6, 3, padding=1, groups=2, num_experts=3,
                         strategy=strategy).eval()
        traced = torch.jit.trace(layer, torch.randn(2, 4, 6, 5),
                                 check_trace=False)
        x = torch.randn(3, 4, 6, 5)
        with torch.no_grad():
            torch.testing.assert_close(traced(x), layer(x))


def test_torch_compile_keeps_the_rule_and_recompiles_for_a_new_batch(
        monkeypatch):
    """Under torch.compile the batch may enter the graph (dynamo guards on
    it): 'auto' takes the grouped path where eager does (a depthwise conv:
    unfold there costs 8-23x), and a new batch size gives eager's result;
    torch.export, whose graph must serve any batch, keeps unfold."""
    from mmconvplug.convs import cond_conv
    from mmconvplug.utils import torch_helpers
    taken = []
    real = cond_conv.cond_conv_grouped

    def spy(*args, **kwargs):
        taken.append('grouped')
        return real(*args, **kwargs)

    monkeypatch.setattr(cond_conv, 'cond_conv_grouped', spy)
    torch._dynamo.reset()
    layer = CondConv(8, 8, 3, padding=1, groups=8, num_experts=3).double()
    compiled = torch.compile(layer, backend='aot_eager')
    for batch in (2, 3):
        x = torch.randn(batch, 8, 7, 6, dtype=torch.float64,
                        requires_grad=True)
        out = compiled(x)
        if batch == 2:
            assert taken  # dynamo traced the grouped path
        expected = layer(x)
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
        grad, = torch.autograd.grad(out.sum(), x)
        expected_grad, = torch.autograd.grad(expected.sum(), x)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10,
                                   atol=1e-12)
    torch._dynamo.reset()
    if hasattr(torch.compiler, 'is_exporting'):
        monkeypatch.setattr(torch.compiler, 'is_exporting', lambda: True)
        assert torch_helpers.records_portable_graph()
        assert layer.choose_strategy(torch.randn(2, 8, 7, 6)) == 'unfold'
    monkeypatch.undo()
    assert not torch_helpers.records_portable_graph()
    assert layer.choose_strategy(torch.randn(2, 8, 7, 6)) == 'grouped'


def test_from_conv_is_exact_and_breaks_expert_symmetry():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    x = torch.randn(3, 4, 9, 6, dtype=torch.float64)
    for strategy in ('grouped', 'unfold'):
        layer = CondConv.from_conv(conv, num_experts=4, strategy=strategy)
        torch.testing.assert_close(layer(x), conv(x), rtol=0, atol=1e-12)
        # routing starts uniform (1/2) and experts differ (jitter).
        assert torch.all(layer.routing_weights(x) == 0.5)
        assert not torch.allclose(layer.weight[0], layer.weight[1])
    plain = CondConv.from_conv(conv, num_experts=3, expert_jitter=0.0)
    torch.testing.assert_close(plain.weight[0], plain.weight[2], rtol=0,
                               atol=0)
    torch.testing.assert_close(plain(x), conv(x), rtol=0, atol=1e-12)
    # A step of training changes the routing per expert (symmetry broken).
    layer = CondConv.from_conv(conv.float(), num_experts=4)
    layer(x.float()).pow(2).sum().backward()
    grads = layer.routing.weight.grad
    assert not torch.allclose(grads[0], grads[1])


def test_initialisation_like_conv2d_and_respected_by_conv_module():
    layer = CondConv(8, 16, 3, num_experts=4)
    bound = 1 / math.sqrt(8 * 9)  # kaiming_uniform(a=sqrt(5)) of nn.Conv2d
    assert layer.weight.abs().max() <= bound
    assert layer.weight.std() > 0.5 * bound / math.sqrt(3)
    assert not torch.allclose(layer.weight[0], layer.weight[1])
    module = ConvModule(8, 16, 3, padding=1,
                        conv_cfg=dict(type='CondConv', num_experts=4),
                        norm_cfg=dict(type='BN'))
    before = module.conv.weight.detach().clone()
    module.init_weights()  # ConvModule skips kaiming_init: conv has its own
    assert torch.equal(module.conv.weight, before)
    assert module.conv.weight.abs().max() <= bound


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_experts=0), 'num_experts'),
    (dict(strategy='fastest'), 'strategy'),
    (dict(strategy='per_example'), "removed; pass 'grouped'"),
    (dict(strategy='mix_outputs'), "removed; pass 'auto'"),
    (dict(padding_mode='reflect'), 'padding_mode'),
    (dict(padding='same'), 'padding'),
    (dict(groups=3), 'groups'),
])
def test_rejects_settings_it_cannot_honour(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CondConv(4, 8, 3, **kwargs)


@pytest.mark.parametrize('model_name', sorted(MODEL_BUILDERS))
def test_conv_cfg_of_openmmlab_models(model_name):
    model = MODEL_BUILDERS[model_name](dict(type='CondConv', num_experts=2))
    n_cond = sum(isinstance(m, CondConv) for m in model.modules())
    assert n_cond > 0
    outputs = train_step(model, model_inputs(model_name))
    assert all(torch.isfinite(out).all() for out in outputs)
    grads = [m.weight.grad for m in model.modules()
             if isinstance(m, CondConv)]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_each_path_matches_the_float64_reference():
    """The two top-level paths, called directly, against the formula."""
    from mmconvplug.convs.cond_conv import cond_conv_grouped, cond_conv_unfold
    for cin, cout, k, s, p, d, g, bias in GEOMETRIES:
        layer = CondConv(cin, cout, k, stride=s, padding=p, dilation=d,
                         groups=g, bias=bias, num_experts=3).double()
        x = torch.randn(4, cin, 6, 7, dtype=torch.float64)
        kernels, biases = layer.mixed_kernels(layer.routing_weights(x))
        expected = reference(layer, x)
        for path in (cond_conv_grouped, cond_conv_unfold):
            out = path(x, kernels, biases, layer.stride, layer.padding,
                       layer.dilation, layer.groups)
            torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_a_removed_strategy_set_after_construction_raises():
    layer = CondConv(4, 4, 3, padding=1)
    layer.strategy = 'per_example'
    with pytest.raises(ValueError, match="removed; pass 'grouped'"):
        layer(torch.randn(2, 4, 5, 5))
