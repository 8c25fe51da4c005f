"""DOConv: paper formula, init, mmdet/mmseg use (contract: test_conv_contract)."""
import pytest
import torch
from conv_reference_formulas import (
    conv2d_by_unfold,
    do_conv_feature_composition,
    rectangular_identity,
)
from mmcv.cnn import ConvModule
from torch import nn

from mmconvplug.convs import DOConv


def randomised(layer: DOConv) -> DOConv:
    """Move every parameter off its init, so D is far from the identity."""
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0, 0.5)
    return layer


def paper_w_and_d(layer: DOConv):
    """The paper's ``W`` (C_out, C_in/g, D_mul), ``D`` (C_in, k*k, D_mul)."""
    taps = layer.kernel_size[0] * layer.kernel_size[1]
    weight = layer.weight.reshape(layer.out_channels, -1, taps)
    if layer.weight_extra is not None:
        weight = torch.cat([weight, layer.weight_extra], dim=2)
    depthwise = layer.D_delta + rectangular_identity(taps, layer.D_mul,
                                                     layer.D_delta.dtype)
    return weight, depthwise


# (in, out, kernel, stride, padding, dilation, groups, D_mul, bias)
REFERENCE_CASES = [
    (4, 6, 3, 1, 1, 1, 1, None, True),  # DO-Conv
    (4, 6, 3, 2, 1, 1, 1, 13, False),  # D_mul > k*k
    (6, 4, 3, 1, 2, 2, 2, 9, True),  # DO-GConv, dilated
    (6, 6, 3, 1, 1, 1, 3, 11, False),  # DO-GConv, 3 groups
    (4, 4, 3, 1, 1, 1, 4, 9, True),  # DO-DConv, multiplier 1
    (4, 8, 5, 2, 2, 1, 4, 30, False),  # DO-DConv, multiplier 2
    (3, 5, (1, 3), 1, (0, 1), 1, 1, None, True),  # non-square kernel
    (4, 6, (3, 2), (2, 1), 1, (1, 2), 2, 7, True),
]


@pytest.mark.parametrize('case', REFERENCE_CASES, ids=str)
def test_do_conv_matches_feature_composition_reference(case):
    """Kernel composition (module) == feature composition (paper), float64.

    The reference applies each input channel's own ``D`` to its unfolded
    patches first, then ``W``; a wrong input-channel index in ``D`` (the
    grouped/depthwise pitfall) breaks this equality.
    """
    cin, cout, k, stride, pad, dil, groups, d_mul, bias = case
    layer = randomised(
        DOConv(cin, cout, k, stride=stride, padding=pad, dilation=dil,
               groups=groups, bias=bias, D_mul=d_mul).double())
    x = torch.randn(2, cin, 9, 11, dtype=torch.float64)
    weight, depthwise = paper_w_and_d(layer)
    expected = do_conv_feature_composition(x, weight, depthwise, layer.bias,
                                           layer.kernel_size, stride, pad,
                                           dil, groups)
    out = layer(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() <= 1e-10


def test_do_conv_depthwise_kernel_is_per_input_channel():
    """Changing D of input channel c only changes outputs that read c."""
    layer = randomised(DOConv(6, 4, 3, padding=1, groups=2).double())
    x = torch.randn(1, 6, 7, 7, dtype=torch.float64)
    before = layer(x)
    with torch.no_grad():
        layer.D_delta[4] += 1.0  # input channel 4 lives in group 1
    after = layer(x)
    changed = (after - before).abs().amax(dim=(0, 2, 3)) > 1e-9
    assert changed.tolist() == [False, False, True, True]


def test_do_conv_starts_as_its_plain_conv():
    layer = DOConv(5, 7, 3, stride=2, padding=1, groups=1, D_mul=12).double()
    x = torch.randn(2, 5, 8, 9, dtype=torch.float64)
    expected = conv2d_by_unfold(x, layer.weight, layer.bias, 2, 1)
    assert torch.allclose(layer(x), expected, rtol=0, atol=1e-12)


def test_do_conv_gradcheck_depthwise_multiplier():
    layer = randomised(DOConv(3, 6, 3, padding=1, groups=3,
                              bias=False).double())
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)

    def run(x, *_):
        return layer(x)

    assert torch.autograd.gradcheck(run, (x, layer.weight, layer.D_delta))


def test_do_conv_one_by_one_is_plain_conv():
    layer = DOConv(4, 6, 1, D_mul=20)
    assert layer.D_delta is None and not layer.over_parameterised
    assert [name for name, _ in layer.named_parameters()] == ['weight', 'bias']


@pytest.mark.parametrize(
    'kwargs, match',
    [(dict(D_mul=4), 'D_mul=4 is smaller than kh\\*kw=9'),
     (dict(D_mul=0), 'D_mul must be a positive int'),
     (dict(D_mul=9.0), 'D_mul must be a positive int'),
     (dict(groups=3), 'groups=3 must divide'),
     (dict(padding='same'), 'string padding')])
def test_do_conv_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DOConv(4, 4, 3, **kwargs)


def test_do_conv_module_init_keeps_d_at_identity():
    module = ConvModule(4, 8, 3, padding=1, conv_cfg=dict(type='DOConv'),
                        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
    module.init_weights()
    assert isinstance(module.conv, DOConv) and module.conv.bias is None
    assert torch.count_nonzero(module.conv.D_delta) == 0
    assert 0 < module.conv.weight.std() < 1


def _forward_backward(model, x):
    outs = model(x)
    sum(out.float().mean() for out in outs).backward()
    return outs


def test_do_conv_as_mmdet_resnet50_conv_cfg():
    from mmdet.registry import MODELS as MMDET_MODELS
    model = MMDET_MODELS.build(
        dict(type='mmdet.ResNet', depth=50, conv_cfg=dict(type='DOConv'),
             init_cfg=[dict(type='Kaiming', layer='Conv2d'),
                       dict(type='Constant', val=1,
                            layer=['_BatchNorm', 'GroupNorm'])]))
    model.init_weights()
    convs = [m for m in model.modules() if isinstance(m, DOConv)]
    assert len(convs) == 53 and not any(
        type(m) is nn.Conv2d for m in model.modules())
    for conv in convs:  # identity survives init_cfg; kernels sensibly scaled
        if conv.D_delta is not None:
            assert torch.count_nonzero(conv.D_delta) == 0
        assert 0 < conv.weight.std() < 1
    outs = _forward_backward(model, torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    assert model.layer4[0].conv2.D_delta.grad is not None


def test_do_conv_as_mmseg_resnetv1c_conv_cfg():
    from mmseg.registry import MODELS as MMSEG_MODELS
    model = MMSEG_MODELS.build(
        dict(type='mmseg.ResNetV1c', depth=18, conv_cfg=dict(type='DOConv'),
             norm_cfg=dict(type='BN', requires_grad=True)))
    model.init_weights()
    outs = _forward_backward(model, torch.randn(1, 3, 48, 40))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    assert model.stem[0].D_delta.grad is not None


def test_do_conv_as_fpn_and_ssd_neck_conv_cfg():
    from mmdet.registry import MODELS as MMDET_MODELS
    fpn = MMDET_MODELS.build(
        dict(type='mmdet.FPN', in_channels=[8, 16], out_channels=8,
             num_outs=3, conv_cfg=dict(type='DOConv')))
    feats = (torch.randn(1, 8, 16, 12), torch.randn(1, 16, 8, 6))
    outs = _forward_backward(fpn, feats)
    assert len(outs) == 3 and isinstance(fpn.fpn_convs[0].conv, DOConv)
    neck = MMDET_MODELS.build(
        dict(type='mmdet.SSDNeck', in_channels=(8, 16),
             out_channels=(8, 16, 8), level_strides=(2, ),
             level_paddings=(1, ), l2_norm_scale=None,
             conv_cfg=dict(type='DOConv')))
    outs = _forward_backward(neck, feats)
    assert len(outs) == 3
    assert any(isinstance(m, DOConv) for m in neck.modules())
