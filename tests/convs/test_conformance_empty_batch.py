"""Conformance: an empty batch ``(0, C, H, W)`` behaves as in ``nn.Conv2d``.

mmdet's mask and keypoint heads meet zero RoIs whenever a batch has no
positive RoI for them (``filter_empty_gt=False``, crowd-only images): the
conv must return an empty output of the right shape and, after a backward
of ``out.sum()``, a zero gradient (not None) for every trainable tensor,
as ``nn.Conv2d`` does. Checked for every registered variant, train and eval,
and for every CondConv strategy (see ``docs/conformance.md``).
"""
import pytest
import torch
from mmcv.cnn import ConvModule
from test_conv_contract import GEOMETRIES, VARIANTS, build, variant
from torch import nn

from mmconvplug.convs.cond_conv import COND_CONV_STRATEGIES


def _plain(geometry: str) -> nn.Conv2d:
    cin, cout, k, s, p, d, g, bias = GEOMETRIES[geometry]
    return nn.Conv2d(cin, cout, k, s, p, d, g, bias)


def _check_empty_batch(layer: nn.Module, plain: nn.Conv2d,
                       training: bool) -> None:
    layer.train(training)
    plain.train(training)
    x = torch.randn(0, plain.in_channels, 7, 6, requires_grad=True)
    expected = plain(x)
    out = layer(x)
    assert out.shape == expected.shape
    assert expected.shape[:2] == (0, plain.out_channels)
    out.sum().backward()
    expected.sum().backward()
    assert all(p.grad is not None and not p.grad.any()
               for p in plain.parameters())  # what nn.Conv2d gives
    trainable = [(n, p) for n, p in layer.named_parameters()
                 if p.requires_grad]
    assert trainable
    for name, param in trainable:
        assert param.grad is not None, f'{name}: no gradient'
        assert param.grad.shape == param.shape, name
        assert not param.grad.any(), f'{name}: non-zero gradient'
    assert x.grad is not None and x.grad.shape == x.shape
    # and a non-empty batch afterwards is unaffected (no state went bad)
    layer.eval()
    with torch.no_grad():
        full = layer(torch.randn(2, plain.in_channels, 7, 6))
    assert torch.isfinite(full).all()


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('geometry', list(GEOMETRIES))
@pytest.mark.parametrize('name', VARIANTS)
def test_empty_batch_gives_empty_output_and_zero_gradients(
        name, geometry, training):
    _check_empty_batch(build(name, geometry), _plain(geometry), training)


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('strategy', COND_CONV_STRATEGIES)
def test_every_cond_conv_strategy_takes_an_empty_batch(strategy, training):
    layer = build('CondConv')
    layer.strategy = strategy
    _check_empty_batch(layer, _plain('grouped'), training)


@pytest.mark.parametrize('name', VARIANTS)
def test_empty_batch_through_a_conv_module_in_eval(name):
    """A mask head's ``ConvModule`` (conv, BN, ReLU) in eval, no_grad."""
    cin, cout = 4, 6
    module = ConvModule(cin, cout, 3, padding=1, conv_cfg=dict(type=name),
                        norm_cfg=dict(type='BN')).eval()
    assert type(module.conv) is variant(name)
    with torch.no_grad():
        assert module(torch.randn(0, cin, 5, 5)).shape == (0, cout, 5, 5)
