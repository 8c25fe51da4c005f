"""SCConv: the official self-calibrated conv, checked against the paper."""
import math

import pytest
import torch
from cond_sc_dws_reference import (
    MODEL_BUILDERS,
    model_inputs,
    sc_conv_reference,
    train_step,
)
from mmcv.cnn import ConvModule
from torch import nn

from mmconvplug.convs import SCConv


def randomise_norms(layer):
    """Non-trivial running statistics and affine parameters."""
    with torch.no_grad():
        for module in layer.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)


def reference(layer, x):
    params = {}
    for name, seq in (('k2', layer.k2[1:]), ('k3', layer.k3),
                      ('k4', layer.k4)):
        conv, norm = seq[0], seq[1]
        params[name] = (conv.weight, (norm.running_mean, norm.running_var,
                                      norm.weight, norm.bias, norm.eps))
    return sc_conv_reference(x, params, layer.pooling_r, layer.stride,
                             layer.padding, layer.dilation, layer.groups)


# (in, out, kernel, stride, padding, dilation, groups, input size)
GEOMETRIES = [
    (4, 4, 3, 1, 1, 1, 1, (8, 12)),       # SCNet's case, divisible sizes
    (4, 4, 3, 2, 2, 2, 2, (9, 7)),        # stride, dilation, groups, odd sizes
    (3, 5, (3, 1), (2, 1), (1, 0), 1, 1, (10, 6)),  # in != out, non-square k
    (4, 6, 1, 1, 0, 1, 2, (5, 9)),        # a ResNet 1x1 conv
    (4, 4, 3, 1, 0, 1, 1, (3, 5)),        # SSD's unpadded conv, map < r
]


@pytest.mark.parametrize('geometry', GEOMETRIES)
def test_matches_paper_reference(geometry):
    cin, cout, k, s, p, d, g, size = geometry
    layer = SCConv(cin, cout, k, stride=s, padding=p, dilation=d,
                   groups=g).double().eval()
    randomise_norms(layer)
    x = torch.randn(2, cin, *size, dtype=torch.float64)
    out = layer(x)
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
    assert out.shape == conv(x.float()).shape  # the drop-in's output size
    torch.testing.assert_close(out, reference(layer, x), rtol=0, atol=1e-12)


def test_official_module_layout_and_checkpoint_keys():
    layer = SCConv(8, 8)
    keys = set(layer.state_dict())
    for key in ('k2.1.weight', 'k2.2.weight', 'k2.2.running_mean',
                'k3.0.weight', 'k3.1.running_var', 'k4.0.weight',
                'k4.1.bias'):
        assert key in keys
    assert layer.kernel_size == (3, 3) and layer.padding == (1, 1)
    assert SCConv(8, 8, 5, dilation=2).padding == (4, 4)  # "same" default
    assert isinstance(layer.k2[0], nn.AvgPool2d)
    assert layer.k2[0].kernel_size == 4 and layer.k2[0].stride == 4


def test_norm_cfg_and_bias():
    plain = SCConv(4, 4, norm_cfg=None, bias=True)
    assert len(plain.k4) == 1 and plain.k4[0].bias is not None
    assert plain.k3[0].bias is None
    group_norm = SCConv(4, 4, norm_cfg=dict(type='GN', num_groups=2))
    assert isinstance(group_norm.k3[1], nn.GroupNorm)
    assert group_norm(torch.randn(1, 4, 6, 6)).shape == (1, 4, 6, 6)


def test_initialisation_is_scnet_kaiming_and_respected_by_conv_module():
    torch.manual_seed(0)
    layer = SCConv(32, 32, 3)
    expected_std = math.sqrt(2.0 / (32 * 9))  # kaiming fan_out, ReLU
    for conv in (layer.k2[1], layer.k3[0], layer.k4[0]):
        assert abs(conv.weight.std().item() / expected_std - 1) < 0.1
    assert torch.all(layer.k4[1].weight == 1) and \
        torch.all(layer.k4[1].bias == 0)
    module = ConvModule(8, 8, 3, padding=1, conv_cfg=dict(type='SCConv'),
                        norm_cfg=dict(type='BN'))
    before = module.conv.k3[0].weight.detach().clone()
    module.init_weights()
    assert torch.equal(module.conv.k3[0].weight, before)


@pytest.mark.parametrize('kwargs, match', [
    (dict(kernel_size=2, padding=0), 'odd'),
    (dict(pooling_r=0), 'pooling_r'),
    (dict(padding_mode='circular'), 'padding_mode'),
    (dict(norm_cfg='BN'), 'norm_cfg'),
    (dict(groups=3), 'groups'),
])
def test_rejects_settings_it_cannot_honour(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SCConv(4, 4, **kwargs)


def test_resnet_in_out_rule_calibrates_with_input_channels():
    """ResNet passes in != out (its 1x1 convs, the stem): K2 and K3 keep
    the input's channels (the gate adds to and multiplies the input) and K4
    maps them to the requested output channels with the requested stride."""
    model = MODEL_BUILDERS['resnet50'](dict(type='SCConv'))
    stem, expand = model.conv1, model.layer1[0].conv3
    assert (stem.in_channels, stem.out_channels) == (3, 8)
    assert stem.k3[0].out_channels == 3 and stem.k4[0].out_channels == 8
    assert stem.k4[0].stride == (2, 2) and stem.k3[0].stride == (1, 1)
    assert (expand.k3[0].in_channels, expand.k3[0].out_channels) == (8, 8)
    assert expand.k4[0].out_channels == 32
    # mmdet builds its 1x1 convs without a padding argument: padding=None
    # then means "same", i.e. 0 for 1x1 as nn.Conv2d; 3x3 pass padding.
    assert expand.padding == (0, 0) and model.layer1[0].conv2.padding == (1,
                                                                          1)


@pytest.mark.parametrize('model_name', sorted(MODEL_BUILDERS))
def test_conv_cfg_of_openmmlab_models(model_name):
    model = MODEL_BUILDERS[model_name](dict(type='SCConv'))
    assert any(isinstance(m, SCConv) for m in model.modules())
    outputs = train_step(model, model_inputs(model_name))
    assert all(torch.isfinite(out).all() for out in outputs)
    grads = [m.k3[0].weight.grad for m in model.modules()
             if isinstance(m, SCConv)]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
