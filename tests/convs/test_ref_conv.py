"""RefConv: paper formula, frozen basis, init, mmdet/mmseg (contract suite aside)."""
import pytest
import torch
from conv_reference_formulas import (
    conv2d_by_unfold,
    refocused_kernel_by_shifts,
)
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.optim import build_optim_wrapper
from torch import nn

from mmconvplug.convs import RefConv


def randomised(layer: RefConv) -> RefConv:
    """Random basis, map and bias, so ``T`` is far from zero."""
    with torch.no_grad():
        layer.weight.normal_(0, 0.5)
        for param in layer.parameters():
            param.normal_(0, 0.5)
    return layer


# (in, out, kernel, stride, padding, dilation, groups, map_size, map_groups)
REFERENCE_CASES = [
    (4, 6, 3, 1, 1, 1, 1, None, None),  # dense: G = C_out*C_in
    (4, 4, 3, 2, 1, 1, 4, None, None),  # depthwise: G = 1, dense mixing
    (6, 4, 3, 1, 2, 2, 2, None, None),  # grouped: G = N / groups
    (4, 6, 3, 1, 1, 1, 1, None, 6),  # custom G
    (4, 4, 5, 1, 2, 1, 1, 5, None),  # map as large as the kernel
    (4, 4, 5, 2, 2, 1, 2, (3, 1), 4),  # non-square map
    (3, 5, (1, 3), 1, (0, 1), 1, 1, None, None),  # map shrinks to (1, 3)
    (4, 8, (3, 2), (2, 1), 1, (1, 2), 4, None, None),  # even side: map 1
]


@pytest.mark.parametrize('case', REFERENCE_CASES, ids=str)
def test_ref_conv_matches_paper_formula(case):
    """``W_t = W_b + T(W_b)`` tap by tap, then a patch-matrix conv."""
    cin, cout, k, stride, pad, dil, groups, map_size, map_groups = case
    layer = randomised(
        RefConv(cin, cout, k, stride=stride, padding=pad, dilation=dil,
                groups=groups, map_size=map_size,
                map_groups=map_groups).double())
    kernel = refocused_kernel_by_shifts(layer.weight, layer.refocus_weight,
                                        layer.map_groups)
    x = torch.randn(2, cin, 9, 11, dtype=torch.float64)
    expected = conv2d_by_unfold(x, kernel, layer.bias, stride, pad, dil,
                                groups)
    out = layer(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() <= 1e-10


def test_ref_conv_default_map_groups_follow_the_official_code():
    dense = RefConv(8, 16, 3)
    assert dense.map_groups == 8 * 16  # each kernel refocused on its own
    assert dense.refocus_weight.shape == (128, 1, 3, 3)
    depthwise = RefConv(8, 8, 3, groups=8)
    assert depthwise.map_groups == 1  # every kernel sees all the others
    assert depthwise.refocus_weight.shape == (8, 8, 3, 3)
    assert RefConv(8, 8, 3, groups=2).map_groups == 16
    assert RefConv(4, 4, (1, 3)).map_size == (1, 3)


def test_ref_conv_basis_is_frozen_and_outside_the_optimizer():
    layer = randomised(RefConv(4, 4, 3, padding=1))
    assert 'weight' in dict(layer.named_buffers())
    assert 'weight' not in dict(layer.named_parameters())
    assert list(layer.state_dict()) == ['refocus_weight', 'bias', 'weight']
    optim_wrapper = build_optim_wrapper(
        nn.Sequential(layer),
        dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=0.1)))
    in_optimizer = [
        p for group in optim_wrapper.optimizer.param_groups
        for p in group['params']
    ]
    assert not any(p is layer.weight for p in in_optimizer)
    basis = layer.weight.clone()
    kernel_before = layer.fold().weight
    layer(torch.randn(2, 4, 6, 6)).square().sum().backward()
    assert layer.weight.grad is None
    optim_wrapper.step()
    assert torch.equal(layer.weight, basis)
    assert not torch.equal(layer.fold().weight, kernel_before)


def test_ref_conv_zero_init_keeps_the_basis():
    layer = RefConv(4, 6, 3, stride=2, padding=1).double()
    assert torch.count_nonzero(layer.refocus_weight) == 0
    x = torch.randn(2, 4, 8, 9, dtype=torch.float64)
    expected = conv2d_by_unfold(x, layer.weight, layer.bias, 2, 1)
    assert (layer(x) - expected).abs().max().item() <= 1e-12
    random_map = RefConv(4, 6, 3, zero_init_refocus=False)
    assert torch.count_nonzero(random_map.refocus_weight) > 0


def test_ref_conv_one_by_one_is_a_trainable_plain_conv():
    layer = RefConv(4, 6, 1, map_size=3)
    assert not layer.refocusing and layer.refocus_weight is None
    assert isinstance(layer.weight, nn.Parameter)
    assert layer.weight.requires_grad
    conv = nn.Conv2d(4, 6, 1)
    assert type(RefConv.from_conv(conv).weight) is nn.Parameter


@pytest.mark.parametrize(
    'kwargs, match',
    [(dict(map_size=5), 'larger than kernel_size'),
     (dict(map_size=2), 'odd positive'),
     (dict(map_groups=5), 'map_groups must be a positive int dividing'),
     (dict(groups=3), 'groups=3 must divide')])
def test_ref_conv_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RefConv(4, 4, 3, **kwargs)


def test_ref_conv_hyper_parameters_through_build_conv_layer():
    layer = build_conv_layer(
        dict(type='RefConv', map_groups=4), 4, 8, 3, stride=2, padding=1,
        dilation=1, groups=2, bias=False)
    assert isinstance(layer, RefConv) and layer.map_groups == 4
    module = ConvModule(4, 8, 3, padding=1, conv_cfg=dict(type='RefConv'),
                        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
    module.init_weights()
    assert torch.count_nonzero(module.conv.refocus_weight) == 0


def _forward_backward(model, x):
    outs = model(x)
    sum(out.float().mean() for out in outs).backward()
    return outs


def test_ref_conv_as_mmdet_resnet50_conv_cfg():
    from mmdet.registry import MODELS as MMDET_MODELS
    model = MMDET_MODELS.build(
        dict(type='mmdet.ResNet', depth=50, conv_cfg=dict(type='RefConv'),
             init_cfg=[dict(type='Kaiming', layer='Conv2d'),
                       dict(type='Constant', val=1,
                            layer=['_BatchNorm', 'GroupNorm'])]))
    model.init_weights()
    convs = [m for m in model.modules() if isinstance(m, RefConv)]
    assert len(convs) == 53
    for conv in convs:  # zero map survives init_cfg; basis sensibly scaled
        if conv.refocusing:
            assert torch.count_nonzero(conv.refocus_weight) == 0
        assert 0 < conv.weight.std() < 1
    outs = _forward_backward(model, torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    assert model.layer4[0].conv2.refocus_weight.grad is not None
    assert model.layer4[0].conv2.weight.grad is None


def test_ref_conv_as_mmseg_resnetv1c_conv_cfg():
    from mmseg.registry import MODELS as MMSEG_MODELS
    model = MMSEG_MODELS.build(
        dict(type='mmseg.ResNetV1c', depth=18, conv_cfg=dict(type='RefConv'),
             norm_cfg=dict(type='BN', requires_grad=True)))
    model.init_weights()
    outs = _forward_backward(model, torch.randn(1, 3, 48, 40))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    assert model.stem[0].refocus_weight.grad is not None


def test_ref_conv_as_fpn_and_ssd_neck_conv_cfg():
    from mmdet.registry import MODELS as MMDET_MODELS
    fpn = MMDET_MODELS.build(
        dict(type='mmdet.FPN', in_channels=[8, 16], out_channels=8,
             num_outs=3, conv_cfg=dict(type='RefConv')))
    feats = (torch.randn(1, 8, 16, 12), torch.randn(1, 16, 8, 6))
    outs = _forward_backward(fpn, feats)
    assert len(outs) == 3 and isinstance(fpn.fpn_convs[0].conv, RefConv)
    neck = MMDET_MODELS.build(
        dict(type='mmdet.SSDNeck', in_channels=(8, 16),
             out_channels=(8, 16, 8), level_strides=(2, ),
             level_paddings=(1, ), l2_norm_scale=None,
             conv_cfg=dict(type='RefConv')))
    outs = _forward_backward(neck, feats)
    assert len(outs) == 3
    assert any(isinstance(m, RefConv) for m in neck.modules())
