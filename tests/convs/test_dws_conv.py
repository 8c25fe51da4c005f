"""DWSConv and the active-domain API, checked against the paper's formula."""
import pytest
import torch
from cond_sc_dws_reference import (
    MODEL_BUILDERS,
    build_fpn,
    dws_conv_reference,
    model_inputs,
    train_step,
)
from mmcv.cnn import ConvModule, build_conv_layer
from mmdet.structures import DetDataSample
from torch import nn

from mmconvplug.convs import (
    DWSConv,
    FoldUnsupportedError,
    count_domain_parameters,
    domain_from_data_samples,
    get_active_domain,
    is_foldable,
    set_active_domain,
    set_domain_from_data_samples,
    using_domain,
)
from mmconvplug.convs.base import CONV_ATTRIBUTES


def randomise_norms(layer):
    with torch.no_grad():
        for module in layer.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        if layer.pointwise.bias is not None:
            layer.pointwise.bias.uniform_(-0.5, 0.5)


def reference(layer, x, domain=None):
    norms = None
    if layer.norms is not None:
        norms = [(n.running_mean, n.running_var, n.weight, n.bias, n.eps)
                 for n in layer.norms]
    gate = None
    if layer.gate is not None:
        gate = (layer.gate[0].weight, layer.gate[0].bias,
                layer.gate[2].weight, layer.gate[2].bias)
    return dws_conv_reference(
        x, [dw.weight for dw in layer.depthwise], norms,
        layer.pointwise.weight, layer.pointwise.bias, layer.stride,
        layer.padding, layer.dilation, layer.groups, domain=domain,
        gate=gate)


# (in, out, kernel, stride, padding, dilation, groups, bias)
GEOMETRIES = [
    (3, 5, 3, 1, 1, 1, 1, True),
    (4, 6, 3, 2, 2, 2, 2, False),
    (4, 4, (1, 3), (1, 2), (0, 1), 1, 4, True),
]


@pytest.mark.parametrize('geometry', GEOMETRIES)
def test_every_domain_matches_paper_reference(geometry):
    cin, cout, k, s, p, d, g, bias = geometry
    layer = DWSConv(cin, cout, k, stride=s, padding=p, dilation=d, groups=g,
                    bias=bias, num_domains=3).double().eval()
    randomise_norms(layer)
    x = torch.randn(2, cin, 7, 10, dtype=torch.float64)
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
    for domain in range(3):
        layer.active_domain = domain
        out = layer(x)
        assert out.shape == conv(x.float()).shape
        torch.testing.assert_close(
            out, reference(layer, x, domain), rtol=0, atol=1e-12)


def test_soft_sharing_gate_matches_paper_reference():
    layer = DWSConv(8, 6, 3, padding=1, num_domains=3, gate=True,
                    gate_reduction=4).double().eval()
    randomise_norms(layer)
    assert layer.gate[0].out_features == 8 // 4 + 1
    x = torch.randn(3, 8, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(layer, x), rtol=0,
                               atol=1e-12)
    weights = layer.gate_weights(x)
    torch.testing.assert_close(weights.sum(1), torch.ones(3, dtype=x.dtype))


@pytest.mark.parametrize('gate', [False, True])
def test_gradcheck(gate):
    layer = DWSConv(2, 3, 3, padding=1, num_domains=2,
                    gate=gate).double().train()
    layer.active_domain = 1
    x = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, ), fast_mode=True)


@pytest.mark.parametrize('geometry', GEOMETRIES)
def test_fold_keeps_the_active_domain_exactly(geometry):
    cin, cout, k, s, p, d, g, bias = geometry
    layer = DWSConv(cin, cout, k, stride=s, padding=p, dilation=d, groups=g,
                    bias=bias, num_domains=3).double().eval()
    randomise_norms(layer)
    set_active_domain(layer, 1)
    x = torch.randn(2, cin, 9, 8, dtype=torch.float64)
    expected = layer(x)
    assert is_foldable(layer)
    folded = layer.fold()
    assert type(folded) is nn.Conv2d
    for name in CONV_ATTRIBUTES:
        assert getattr(folded, name) == getattr(layer, name), name
    torch.testing.assert_close(folded(x), expected, rtol=0, atol=1e-12)
    separable = layer.fold_separable()
    assert isinstance(separable, nn.Sequential)
    assert separable.depthwise.groups == cin
    torch.testing.assert_close(separable(x), expected, rtol=0, atol=1e-12)
    # Only the active domain survives: one depthwise kernel, no norms.
    own = sum(p.numel() for p in separable.parameters())
    assert own == cin * layer.kernel_size[0] * layer.kernel_size[1] + cin + \
        sum(p.numel() for p in layer.pointwise.parameters())
    layer.fold_to = 'separable'
    assert isinstance(layer.fold(), nn.Sequential)


def test_fold_without_norm():
    layer = DWSConv(4, 4, 3, padding=1, norm_cfg=None, num_domains=2).double()
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(layer.fold()(x), layer(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize('kwargs, match', [
    (dict(gate=True), 'gate'),
    (dict(norm_cfg=dict(type='GN', num_groups=2)), 'running'),
])
def test_unfoldable_forms_say_why(kwargs, match):
    layer = DWSConv(4, 4, 3, padding=1, num_domains=2, **kwargs)
    assert not is_foldable(layer)
    assert match in layer.fold_unsupported_reason
    with pytest.raises(FoldUnsupportedError, match=match):
        layer.fold()


@pytest.mark.parametrize('gate', [False, True])
def test_params_per_domain_is_what_one_more_domain_costs(gate):
    def total(num_domains):
        layer = DWSConv(8, 16, 3, num_domains=num_domains, gate=gate)
        return sum(p.numel() for p in layer.parameters()), layer

    two, layer = total(2)
    three, _ = total(3)
    assert layer.params_per_domain() == three - two
    # a whole model: every DWSConv of an FPN
    fpn2 = build_fpn(dict(type='DWSConv', num_domains=2, gate=gate))
    fpn3 = build_fpn(dict(type='DWSConv', num_domains=3, gate=gate))
    grow = sum(p.numel() for p in fpn3.parameters()) - \
        sum(p.numel() for p in fpn2.parameters())
    assert count_domain_parameters(fpn2) == grow > 0


def test_set_active_domain_for_a_whole_model():
    model = build_fpn(dict(type='DWSConv', num_domains=3))
    layers = [m for m in model.modules() if isinstance(m, DWSConv)]
    assert set_active_domain(model, 2) == len(layers) > 1
    assert all(m.active_domain == 2 for m in layers)
    assert get_active_domain(model) == 2
    with pytest.raises(IndexError, match='num_domains=3'):
        set_active_domain(model, 3)
    with pytest.raises(IndexError):
        set_active_domain(model, -1)
    with pytest.raises(ValueError, match='int'):
        set_active_domain(model, '1')
    assert get_active_domain(model) == 2  # unchanged by the failures
    with using_domain(model, 0):
        assert get_active_domain(model) == 0
    assert get_active_domain(model) == 2
    layers[0].active_domain = 1
    with pytest.raises(ValueError, match='different domains'):
        get_active_domain(model)
    with pytest.raises(ValueError, match='no multi-domain layer'):
        set_active_domain(nn.Conv2d(2, 2, 1), 0)


def test_only_the_active_domain_trains():
    layer = DWSConv(4, 4, 3, padding=1, num_domains=3)
    set_active_domain(layer, 1)
    layer(torch.randn(2, 4, 5, 5)).sum().backward()
    assert layer.depthwise[1].weight.grad is not None
    assert layer.depthwise[0].weight.grad is None
    assert layer.depthwise[2].weight.grad is None


def samples(*metainfos):
    out = []
    for info in metainfos:
        sample = DetDataSample()
        sample.set_metainfo(info)
        out.append(sample)
    return out


def test_domain_from_data_samples():
    assert domain_from_data_samples(
        samples({'domain_idx': 1}, {'domain_idx': 1})) == 1
    assert domain_from_data_samples([{'domain': 2}]) == 2
    names = ['coco', 'voc', 'cityscapes']
    assert domain_from_data_samples(
        samples({'domain': 'voc'}), domain_names=names) == 1
    assert domain_from_data_samples(samples({'img_id': 0})) is None
    assert domain_from_data_samples([]) is None
    with pytest.raises(ValueError, match='one domain'):
        domain_from_data_samples(samples({'domain_idx': 0},
                                         {'domain_idx': 1}))
    with pytest.raises(ValueError, match='one domain'):
        domain_from_data_samples(samples({'domain_idx': 0}, {'img_id': 3}))
    with pytest.raises(ValueError, match='domain_names'):
        domain_from_data_samples(samples({'domain': 'voc'}))
    with pytest.raises(ValueError, match='not in domain_names'):
        domain_from_data_samples(samples({'domain': 'kitti'}),
                                 domain_names=names)
    with pytest.raises(IndexError, match='out of range'):
        domain_from_data_samples(samples({'domain_idx': 5}), num_domains=3)
    model = DWSConv(4, 4, 3, num_domains=3)
    assert set_domain_from_data_samples(
        model, samples({'domain_idx': 2})) == 2
    assert model.active_domain == 2
    with pytest.raises(IndexError):
        set_domain_from_data_samples(model, samples({'domain_idx': 3}))


def test_initialisation_and_conv_module():
    layer = DWSConv(16, 32, 3, num_domains=2)
    assert not torch.equal(layer.depthwise[0].weight,
                           layer.depthwise[1].weight)
    assert all(torch.all(n.weight == 1) for n in layer.norms)
    module = ConvModule(8, 8, 3, padding=1,
                        conv_cfg=dict(type='DWSConv', num_domains=2),
                        norm_cfg=dict(type='BN'))
    before = module.conv.pointwise.weight.detach().clone()
    module.init_weights()
    assert torch.equal(module.conv.pointwise.weight, before)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_domains=0), 'num_domains'),
    (dict(gate_reduction=0), 'gate_reduction'),
    (dict(fold_to='onnx'), 'fold_to'),
    (dict(padding_mode='reflect'), 'padding_mode'),
    (dict(groups=3), 'groups'),
])
def test_rejects_settings_it_cannot_honour(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DWSConv(4, 8, 3, **kwargs)
    with pytest.raises(IndexError, match='out of range'):
        DWSConv(4, 8, 3, num_domains=2).active_domain = 2


def test_builds_through_build_conv_layer_with_conv_attributes():
    layer = build_conv_layer(dict(type='DWSConv', num_domains=2), 4, 8, 3,
                             stride=2, padding=1, dilation=1, groups=2,
                             bias=False)
    reference_conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2,
                               bias=False)
    for name in CONV_ATTRIBUTES:
        assert getattr(layer, name) == getattr(reference_conv, name), name
    x = torch.randn(2, 4, 11, 8)
    assert layer(x).shape == reference_conv(x).shape


@pytest.mark.parametrize('model_name', sorted(MODEL_BUILDERS))
def test_conv_cfg_of_openmmlab_models(model_name):
    model = MODEL_BUILDERS[model_name](dict(type='DWSConv', num_domains=2))
    set_active_domain(model, 1)
    outputs = train_step(model, model_inputs(model_name))
    assert all(torch.isfinite(out).all() for out in outputs)
    layers = [m for m in model.modules() if isinstance(m, DWSConv)]
    assert layers
    assert all(m.depthwise[1].weight.grad is not None and
               m.depthwise[0].weight.grad is None for m in layers)
