"""SCResNet: the SCNet paper's parameter counts, the official block
layout, and the mmdet/mmseg ResNet options (strides, dilation, v1d,
freezing)."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmconvplug.backbones import SCResNet, SCResNetV1d

IMAGENET_HEAD = 2048 * 1000 + 1000  # the classifier the paper counts
# Most tests use a thin SCNet-50 (base_channels=8, 1/8 of the width): same
# blocks, keys and strides, a fraction of the CPU time.
THIN = dict(depth=50, base_channels=8)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _extra_bn_params(stage_blocks):
    """SCNet has ResNet's conv weights; its norms hold 6 * planes affine
    parameters per block (bn1_a, bn1_b, k1's BN and SCConv's three BNs, each
    of planes/2 channels) where ResNet's bn1 + bn2 hold 4 * planes."""
    planes = (64, 128, 256, 512)
    return sum(2 * p * n for p, n in zip(planes, stage_blocks))


@pytest.mark.parametrize('depth, paper_millions, blocks, exact', [
    (50, 25.56, (3, 4, 6, 3), 23_515_584),
    (101, 44.57, (3, 4, 23, 3), 42_516_416),
])
def test_param_count_matches_the_paper(depth, paper_millions, blocks, exact):
    backbone = _count(SCResNet(depth=depth))
    assert backbone == exact  # backbone only, no classifier
    # Table "SCNet-50: 25.56M, SCNet-101: 44.57M" (with the ImageNet head).
    assert round((backbone + IMAGENET_HEAD) / 1e6, 2) == paper_millions
    # And exactly ResNet's count plus the extra BN affine parameters.
    assert backbone == _count(ResNet(depth=depth)) + _extra_bn_params(blocks)


def test_official_block_layout_and_keys():
    keys = SCResNet(**THIN).state_dict().keys()
    for key in ('conv1.weight', 'bn1.running_mean', 'layer1.0.conv1_a.weight',
                'layer1.0.bn1_a.weight', 'layer1.0.conv1_b.weight',
                'layer1.0.bn1_b.bias', 'layer1.0.k1.0.weight',
                'layer1.0.k1.1.weight', 'layer1.0.scconv.k2.1.weight',
                'layer1.0.scconv.k3.0.weight', 'layer1.0.scconv.k4.1.bias',
                'layer1.0.conv3.weight', 'layer1.0.bn3.weight',
                'layer1.0.downsample.0.weight', 'layer4.2.conv3.weight'):
        assert key in keys, key


def test_registered_for_mmdet_and_mmseg_scopes():
    import mmseg.models  # noqa: F401
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    for registry in (DET_MODELS, SEG_MODELS, MODELS):
        assert registry.get('SCResNet') is SCResNet
        assert registry.get('SCResNetV1d') is SCResNetV1d


def test_feature_strides_and_channels():
    model = SCResNet(**THIN).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 16),
                                              (1, 64, 8, 8),
                                              (1, 128, 4, 4),
                                              (1, 256, 2, 2)]


def test_dilated_output_stride_8_mmseg_style():
    model = SCResNet(
        **THIN, deep_stem=True, strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4), contract_dilation=True,
        out_indices=(2, 3)).eval()
    assert model.layer4[0].k1[0].dilation == (2, 2)  # contracted from 4
    assert model.layer4[1].scconv.dilation == (4, 4)
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 8), (8, 8)]


def test_v1d_deep_stem_avg_down_and_avd():
    model = SCResNetV1d(**THIN).eval()
    assert hasattr(model, 'stem')
    first = model.layer2[0]
    assert first.avd_layer is not None and first.k1[0].stride == (1, 1)
    assert isinstance(first.downsample[0], torch.nn.AvgPool2d)
    assert model.layer1[0].avd_layer is None  # official: not in stage 1
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert tuple(outs[-1].shape) == (1, 256, 2, 2)


def test_frozen_stages_and_norm_eval():
    model = SCResNet(**THIN, frozen_stages=1, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))


def test_zero_init_residual_makes_blocks_identity_at_init():
    model = SCResNet(**THIN)
    model.init_weights()
    assert torch.count_nonzero(model.layer1[0].norm3.weight) == 0


def test_training_step_backpropagates_through_both_halves():
    model = SCResNet(**THIN, out_indices=(3, ))
    model.train()
    out = model(torch.rand(2, 3, 32, 32))[0]
    out.mean().backward()
    block = model.layer3[0]
    assert block.conv1_a.weight.grad is not None
    assert block.scconv.k2[1].weight.grad is not None


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=34), 'depth=34'),
    (dict(depth=50, out_indices=(4, )), 'out_indices'),
    (dict(depth=50, style='tf'), 'style'),
    (dict(depth=50, dcn=dict(type='DCN')), 'dcn'),
])
def test_bad_settings_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SCResNet(**kwargs)


def test_v1d_refuses_overriding_its_fixed_options():
    with pytest.raises(ValueError, match='avd'):
        SCResNetV1d(depth=50, avd=False)
