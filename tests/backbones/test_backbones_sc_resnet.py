"""SCResNet: the SCNet paper's parameter counts, the official block
layout, and the mmdet/mmseg ResNet options (strides, dilation, v1d,
freezing)."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.registry import MODELS
from scnet_official_reference import OfficialSCNet, randomized
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
    # The official layout: conv1 = (conv, BN, ReLU, conv, BN, ReLU, conv),
    # then bn1; no mmdet-style `stem`.
    assert not hasattr(model, 'stem')
    assert [type(m).__name__ for m in model.conv1] == [
        'Conv2d', 'BatchNorm2d', 'ReLU', 'Conv2d', 'BatchNorm2d', 'ReLU',
        'Conv2d']
    assert model.norm1 is model.bn1
    first = model.layer2[0]
    assert first.avd_layer is not None and first.k1[0].stride == (1, 1)
    assert isinstance(first.downsample[0], torch.nn.AvgPool2d)
    assert model.layer1[0].avd_layer is None  # official: not in stage 1
    # Stage 1 does not stride, yet its projection is pool (identity), conv,
    # BN, as in the official code, so the conv is downsample.1.
    pool = model.layer1[0].downsample[0]
    assert isinstance(pool, torch.nn.AvgPool2d) and pool.kernel_size == 1
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert tuple(outs[-1].shape) == (1, 256, 2, 2)


OFFICIAL_CASES = {
    # name: (our backbone, its kwargs, reference kwargs)
    'scnet50': (SCResNet, dict(depth=50), dict(depth=50)),
    'scnet101': (SCResNet, dict(depth=101), dict(depth=101)),
    'scnet50_v1d': (SCResNetV1d, dict(depth=50), dict(depth=50, v1d=True)),
    'scnet50_v1d_dilated': (
        SCResNetV1d,
        dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
             contract_dilation=True),
        dict(depth=50, v1d=True, dilated=True)),
}


@pytest.mark.parametrize('name', sorted(OFFICIAL_CASES))
def test_official_state_dict_loads_strictly_and_gives_official_outputs(
        name):
    """A state dict in the official layout (built by an independent
    reimplementation of the official model) loads with strict=True once its
    ImageNet classifier is dropped, and the backbone then computes the
    official model's stage outputs (float64)."""
    cls, kwargs, ref_kwargs = OFFICIAL_CASES[name]
    reference = randomized(
        OfficialSCNet(base=8, **ref_kwargs)).double()
    state = {k: v for k, v in reference.state_dict().items()
             if not k.startswith('fc.')}
    model = cls(base_channels=8, norm_eval=True, **kwargs)
    model.load_state_dict(state, strict=True)
    model.double().eval()
    # 128 px: the official SCConv needs maps of at least pooling_r (4).
    x = torch.rand(2, 3, 128, 128, dtype=torch.float64)
    with torch.no_grad():
        ours = model(x)
        theirs = reference.features(x)
    assert len(ours) == 4
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # And the checkpoint's own keys: the state dict is the official one.
    assert set(model.state_dict()) == set(state)


def test_v1d_official_keys_are_the_published_names():
    keys = set(SCResNetV1d(**THIN).state_dict())
    for key in ('conv1.0.weight', 'conv1.1.running_var', 'conv1.3.weight',
                'conv1.4.weight', 'conv1.6.weight', 'bn1.weight',
                'layer1.0.downsample.1.weight',
                'layer1.0.downsample.2.running_mean',
                'layer2.0.downsample.1.weight', 'layer4.0.downsample.2.bias'):
        assert key in keys, key
    assert not any(k.startswith('stem.') for k in keys)


def test_frozen_deep_stem_is_frozen_with_its_norms_in_eval():
    model = SCResNetV1d(**THIN, frozen_stages=0, norm_eval=False)
    model.train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.bn1.parameters())
    assert not model.conv1[1].training and not model.bn1.training
    assert model.layer1[0].bn1_a.training


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
