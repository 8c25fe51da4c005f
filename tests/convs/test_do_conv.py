"""DOConv: paper formula, gradients, fold, cache, init and mmdet/mmseg use."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import MODELS
from torch import nn

from conv_reference_formulas import (conv2d_by_unfold,
                                     do_conv_feature_composition,
                                     rectangular_identity)
from mmconvplug.convs import CONV_ATTRIBUTES, DOConv, is_foldable


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP hand-offs on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_do_conv_gradcheck():
    layer = randomised(
        DOConv(4, 4, 3, padding=1, groups=2, D_mul=10, bias=True).double())
    x = torch.randn(1, 4, 5, 4, dtype=torch.float64, requires_grad=True)
    params = [layer.weight, layer.weight_extra, layer.D_delta, layer.bias]

    def run(x, *_):
        return layer(x)

    assert torch.autograd.gradcheck(run, (x, *params))


def test_do_conv_gradcheck_depthwise_multiplier():
    layer = randomised(DOConv(3, 6, 3, padding=1, groups=3,
                              bias=False).double())
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)

    def run(x, *_):
        return layer(x)

    assert torch.autograd.gradcheck(run, (x, layer.weight, layer.D_delta))


# kernel, stride, dilation, groups, bias
FOLD_GRID = list(
    itertools.product([1, 3, 5, (1, 3)], [1, 2], [1, 2],
                      ['dense', 2, 'depthwise'], [True, False]))


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_do_conv_fold_is_exact_over_grid(dtype):
    channels = 4
    for kernel, stride, dilation, groups, bias in FOLD_GRID:
        groups = {'dense': 1, 'depthwise': channels}.get(groups, groups)
        padding = tuple(
            (k // 2) * dilation for k in torch.nn.modules.utils._pair(kernel))
        layer = randomised(
            DOConv(channels, channels, kernel, stride=stride,
                   padding=padding, dilation=dilation, groups=groups,
                   bias=bias).to(dtype))
        folded = layer.fold()
        assert type(folded) is nn.Conv2d
        x = torch.randn(2, channels, 9, 10, dtype=dtype)
        out, out_folded = layer(x), folded(x)
        with torch.no_grad():  # eval: the cached kernel, also for 1x1
            out_eval = layer.eval()(x)
        assert torch.equal(out_eval, layer(x))
        err = max((out - out_folded).abs().max().item(),
                  (out_eval - out_folded).abs().max().item())
        if dtype == torch.float64:
            assert err <= 1e-10, (kernel, stride, groups, bias, err)
        else:
            scale = out.abs().max().item()
            assert err <= 1e-5 * scale, (kernel, stride, groups, bias, err)


def test_do_conv_eval_caches_kernel_and_invalidates(monkeypatch):
    layer = randomised(DOConv(4, 4, 3, padding=1)).eval()
    calls = []
    compose = layer.compose_kernel
    monkeypatch.setattr(layer, 'compose_kernel',
                        lambda: calls.append(1) or compose())
    x = torch.randn(1, 4, 6, 6)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)

    def composed_once_more(step) -> bool:
        before = len(calls)
        step()
        return len(calls) == before + 1

    with torch.no_grad():
        first = layer(x)
        assert not composed_once_more(lambda: layer(x))  # cached
        assert torch.equal(layer(x), first)
    # eval with grad enabled: a fresh graph, gradients reach D.
    assert composed_once_more(lambda: layer(x).sum().backward())
    assert layer.D_delta.grad is not None
    optimizer.step()  # in-place update bumps the parameters' versions
    with torch.no_grad():
        assert composed_once_more(lambda: layer(x))
        expected = F.conv2d(x, compose(), layer.bias, padding=1)
        assert torch.equal(layer(x), expected)
        fresh = DOConv(4, 4, 3, padding=1).state_dict()

        def load_then_forward():
            layer.load_state_dict(fresh)
            layer(x)

        assert composed_once_more(load_then_forward)
        assert composed_once_more(lambda: layer.train().eval()(x))
        assert composed_once_more(lambda: layer.double()(x.double()))


def test_do_conv_frozen_eval_layer_caches_and_passes_gradients(monkeypatch):
    """A frozen stage (eval, requires_grad=False) composes once, and still
    back-propagates to its input, also after an inference-mode call."""
    layer = randomised(DOConv(4, 4, 3, padding=1)).eval()
    layer.requires_grad_(False)
    calls = []
    compose = layer.compose_kernel
    monkeypatch.setattr(layer, 'compose_kernel',
                        lambda: calls.append(1) or compose())
    with torch.inference_mode():
        layer(torch.randn(1, 4, 5, 5))
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    layer(x).sum().backward()
    layer(x).sum().backward()
    assert len(calls) == 2  # one inference-mode call, then one cached
    assert x.grad is not None


def test_do_conv_from_conv_and_pretrained_weight_are_exact():
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2).double()
    x = torch.randn(2, 6, 9, 8, dtype=torch.float64)
    for d_mul in (None, 14):
        layer = DOConv.from_conv(conv, D_mul=d_mul)
        assert layer.weight.dtype == torch.float64
        assert (layer(x) - conv(x)).abs().max().item() <= 1e-12
    # A plain conv checkpoint loads into DOConv; only D_delta is missing.
    layer = DOConv(6, 8, 3, stride=2, padding=1, groups=2).double()
    missing, unexpected = layer.load_state_dict(conv.state_dict(),
                                                strict=False)
    assert missing == ['D_delta'] and unexpected == []
    assert (layer(x) - conv(x)).abs().max().item() <= 1e-12
    # ... and still trains: D moves away from the identity.
    layer(x).square().sum().backward()
    assert layer.D_delta.grad.abs().sum() > 0


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


def test_do_conv_builds_through_mmcv_and_convmodule():
    assert MODELS.get('DOConv') is DOConv
    layer = build_conv_layer(
        dict(type='DOConv'), 4, 8, 3, stride=2, padding=1, dilation=1,
        groups=2, bias=False)
    assert isinstance(layer, DOConv) and is_foldable(layer)
    for name in CONV_ATTRIBUTES:
        assert hasattr(layer, name), name
    assert (layer.transposed, layer.output_padding) == (False, (0, 0))
    module = ConvModule(4, 8, 3, padding=1, conv_cfg=dict(type='DOConv'),
                        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
    module.init_weights()
    assert isinstance(module.conv, DOConv) and module.conv.bias is None
    assert torch.count_nonzero(module.conv.D_delta) == 0
    out = module(torch.randn(2, 4, 6, 7))
    out.sum().backward()
    assert out.shape == (2, 8, 6, 7)
    assert module.conv.D_delta.grad is not None


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


def test_do_conv_train_step_changes_output_but_fold_stays_exact():
    layer = DOConv(4, 4, 3, padding=1)
    x = torch.randn(2, 4, 6, 6)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    F.mse_loss(layer(x), torch.randn(2, 4, 6, 6)).backward()
    optimizer.step()
    assert torch.count_nonzero(layer.D_delta) > 0
    layer.eval()
    with torch.no_grad():
        err = (layer(x) - layer.fold()(x)).abs().max().item()
    assert err <= 1e-5
