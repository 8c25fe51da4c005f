"""MobileNetV1 for SSD300 with CondConv in chosen blocks."""
import pytest
import torch

from mmconvplug.backbones import MobileNetV1


def test_ssd300_feature_maps():
    model = MobileNetV1().eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 300, 300))
    assert [tuple(o.shape) for o in outs] == [(1, 512, 19, 19),
                                              (1, 1024, 10, 10)]


def test_condconv_only_in_the_chosen_blocks():
    model = MobileNetV1(
        condconv_blocks=(11, 12),
        condconv_cfg=dict(type='CondConv', num_experts=2))
    kinds = [[type(m.conv).__name__ for m in block] for block in model.blocks]
    assert kinds[11] == kinds[12] == ['CondConv', 'CondConv']
    assert all(k == ['Conv2d', 'Conv2d'] for k in kinds[:11])
    assert model.blocks[12][0].conv.groups == 1024  # depthwise CondConv
    out = model(torch.rand(2, 3, 64, 64))
    sum(o.mean() for o in out).backward()
    assert model.blocks[12][1].conv.weight.grad is not None


def test_imagenet_parameter_count():
    # MobileNetV1 1.0: 4.2M parameters with the 1000-class head (paper).
    params = sum(p.numel() for p in MobileNetV1().parameters())
    assert round((params + 1024 * 1000 + 1000) / 1e6, 1) == 4.2


def test_frozen_stages_and_norm_eval():
    model = MobileNetV1(frozen_stages=2, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.blocks[1].parameters())
    assert all(p.requires_grad for p in model.blocks[2].parameters())
    assert not any(m.training for m in model.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_indices=(13, )), 'out_indices'),
    (dict(condconv_blocks=(-1, )), 'condconv_blocks'),
    (dict(frozen_stages=20), 'frozen_stages'),
    (dict(widen_factor=0), 'widen_factor'),
])
def test_bad_settings_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MobileNetV1(**kwargs)
