"""The conv-variant contract, checked for every registered variant.

Parametrized by :func:`mmconvplug.convs.conv_variants`: a variant gets every
test here by being registered (restricted to mmconvplug's own classes, so
test-only variants registered by other test modules do not change what is
collected). Paper-reference tests stay in the per-variant files.
"""
import copy
import io
import itertools

import pytest
import torch
from mmcv.cnn import ConvModule, build_conv_layer
from torch import nn

from mmconvplug.convs import (
    FoldUnsupportedError,
    FromConvUnsupportedError,
    conv_variants,
    is_conv_variant,
)
from mmconvplug.convs.base import (
    CONV_ATTRIBUTES,
    ConvVariantContractError,
    FoldableConvMixin,
    build_reference_layer,
    check_conv_variant_class,
)
from mmconvplug.fold import fold_model
from mmconvplug.utils.torch_compat import torchscript_exporter_kwargs

VARIANTS = sorted(name for name, cls in conv_variants().items()
                  if cls.__module__.startswith('mmconvplug.'))

#: (in, out, kernel, stride, padding, dilation, groups, bias)
GEOMETRIES = {
    'grouped': (4, 6, 3, 1, 1, 1, 2, True),
    'strided_dilated': (4, 4, 3, 2, 2, 2, 1, False),
}

#: Relative tolerance of an autocast train step's loss against fp32.
AMP_LOSS_RTOL = {torch.bfloat16: 5e-2, torch.float16: 1e-2}


def variant(name: str) -> type:
    return conv_variants()[name]


def build(name: str, geometry: str = 'grouped',
          dtype=torch.float32) -> nn.Module:
    """The variant at ``geometry``, every parameter and buffer moved off its
    init (so folds and caches are tested away from the identity)."""
    cin, cout, k, s, p, d, g, bias = GEOMETRIES[geometry]
    layer = build_conv_layer(dict(type=name), cin, cout, k, stride=s,
                             padding=p, dilation=d, groups=g, bias=bias)
    randomise(layer)
    return layer.to(dtype)


@torch.no_grad()
def randomise(layer: nn.Module) -> nn.Module:
    for name, tensor in [*layer.named_parameters(), *layer.named_buffers()]:
        if not tensor.is_floating_point():
            continue
        if name.endswith('running_var'):
            tensor.uniform_(0.5, 1.5)
        else:
            tensor.normal_(0, 0.3)
    return layer


def inputs(layer: nn.Module, batch: int = 2, dtype=torch.float32,
           size=(7, 6)) -> torch.Tensor:
    return torch.randn(batch, layer.in_channels, *size, dtype=dtype)


def plain_conv(geometry: str = 'grouped', dtype=torch.float32) -> nn.Conv2d:
    cin, cout, k, s, p, d, g, bias = GEOMETRIES[geometry]
    conv = nn.Conv2d(cin, cout, k, s, p, d, g, bias).to(dtype)
    with torch.no_grad():
        conv.weight.normal_(0, 0.3)
    return conv


def assert_rel_close(actual, expected, rtol):
    scale = expected.abs().max().clamp_min(1e-30)
    error = (actual - expected).abs().max() / scale
    assert error <= rtol, f'relative error {error:.3g} > {rtol:g}'


# ------------------------------------------------------------ declaration
@pytest.mark.parametrize('name', VARIANTS)
def test_declares_and_keeps_the_contract(name):
    cls = variant(name)
    assert check_conv_variant_class(cls) == []
    layer = build_reference_layer(cls)
    assert is_conv_variant(layer)
    expected = dict(in_channels=8, out_channels=8, kernel_size=(3, 3),
                    stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    groups=1, transposed=False, output_padding=(0, 0))
    assert {a: getattr(layer, a) for a in CONV_ATTRIBUTES} == expected
    assert isinstance(layer.foldable, bool)
    assert layer.foldable or layer.fold_unsupported_reason


def test_a_broken_variant_is_reported_when_defined():
    with pytest.raises(ConvVariantContractError,
                       match='from_conv.*from_conv_unsupported_reason'):

        class NoFromConv(FoldableConvMixin, nn.Module):  # noqa: F841

            def __init__(self, in_channels, out_channels, kernel_size,
                         stride=1, padding=0, dilation=1, groups=1,
                         bias=True):
                super().__init__()

            def folded_weight_and_bias(self):
                raise NotImplementedError

    with pytest.raises(ConvVariantContractError, match="nn.Conv2d's"):

        class WrongSignature(FoldableConvMixin, nn.Module):  # noqa: F841
            from_conv_unsupported_reason = 'test'

            def __init__(self, channels, kernel_size=3):
                super().__init__()

            def folded_weight_and_bias(self):
                raise NotImplementedError


# ---------------------------------------------------------------- building
@pytest.mark.parametrize('name', VARIANTS)
def test_builds_through_build_conv_layer_and_conv_module(name):
    cin, cout, k, s, p, d, g, bias = GEOMETRIES['grouped']
    positional = build_conv_layer(dict(type=name), cin, cout, k, s, p, d, g,
                                  bias)
    keyword = build_conv_layer(
        dict(type=name), in_channels=cin, out_channels=cout, kernel_size=k,
        stride=s, padding=p, dilation=d, groups=g, bias=bias)
    for layer in (positional, keyword):
        assert type(layer) is variant(name)
        assert (layer.in_channels, layer.out_channels, layer.groups) == (
            cin, cout, g)
    x = inputs(positional)
    plain = nn.Conv2d(cin, cout, k, s, p, d, g, bias)
    assert positional(x).shape == plain(x).shape
    stock = ConvModule(cin, cout, k, s, p, d, g, norm_cfg=dict(type='BN'))
    for module in (
            ConvModule(cin, cout, k, s, p, d, g, conv_cfg=dict(type=name),
                       norm_cfg=dict(type='BN')),
            ConvModule(in_channels=cin, out_channels=cout, kernel_size=k,
                       stride=s, padding=p, dilation=d, groups=g,
                       conv_cfg=dict(type=name), norm_cfg=dict(type='BN'))):
        assert type(module.conv) is variant(name)
        assert module(x).shape == stock(x).shape
        assert module.with_bias == stock.with_bias  # bias='auto' -> False


# -------------------------------------------------------------------- fold
@pytest.mark.parametrize('geometry', list(GEOMETRIES))
@pytest.mark.parametrize('dtype,rtol', [(torch.float64, 1e-10),
                                        (torch.float32, 1e-5)])
@pytest.mark.parametrize('name', VARIANTS)
def test_fold_is_exact_or_refused_with_reason(name, dtype, rtol, geometry):
    layer = build(name, geometry, dtype).eval()
    x = inputs(layer, dtype=dtype)
    if not layer.foldable:
        with pytest.raises(FoldUnsupportedError, match=name):
            layer.fold()
        return
    folded = layer.fold()
    assert not is_conv_variant(folded)
    with torch.no_grad():
        assert_rel_close(folded(x), layer(x), rtol)
    assert next(folded.parameters()).dtype == dtype


#: kernel, stride, dilation, groups, bias
FOLD_GRID = list(
    itertools.product([1, 3, 5, (1, 3)], [1, 2], [1, 2],
                      ['dense', 2, 'depthwise'], [True, False]))


@pytest.mark.parametrize('dtype,rtol', [(torch.float64, 1e-10),
                                        (torch.float32, 1e-5)])
@pytest.mark.parametrize('name', [n for n in VARIANTS
                                  if variant(n).foldable])
def test_fold_is_exact_over_a_geometry_grid(name, dtype, rtol):
    channels = 4
    for kernel, stride, dilation, groups, bias in FOLD_GRID:
        groups = {'dense': 1, 'depthwise': channels}.get(groups, groups)
        padding = tuple((k // 2) * dilation
                        for k in torch.nn.modules.utils._pair(kernel))
        layer = randomise(
            variant(name)(channels, channels, kernel, stride=stride,
                          padding=padding, dilation=dilation, groups=groups,
                          bias=bias)).to(dtype).eval()
        x = torch.randn(2, channels, 9, 10, dtype=dtype)
        with torch.no_grad():
            assert_rel_close(layer.fold()(x), layer(x), rtol)


@pytest.mark.parametrize('name', VARIANTS)
def test_fold_model_folds_or_keeps_each_variant(name):
    layer = build(name).eval()
    net = nn.Sequential(nn.Conv2d(4, 4, 1), layer, nn.ReLU())
    folded, report = fold_model(net, return_report=True)
    if layer.foldable:
        assert [(e.name, e.from_type) for e in report.folded] == [('1', name)]
    else:
        assert [(e.name, e.type) for e in report.kept] == [('1', name)]
    x = inputs(layer)
    with torch.no_grad():
        assert_rel_close(folded(x), net(x), 1e-5)


# --------------------------------------------------- checkpoint contract
@pytest.mark.parametrize('name', VARIANTS)
def test_new_tensor_names_are_what_a_plain_checkpoint_cannot_fill(name):
    layer = build(name)
    new = layer.new_tensor_names()
    assert new <= set(layer.state_dict())
    conv = plain_conv()
    provided = set(layer.state_dict()) - new
    assert provided <= set(conv.state_dict())  # only weight / bias
    plain_state = {k: v for k, v in conv.state_dict().items()
                   if k in provided}
    fresh = copy.deepcopy(layer)
    result = fresh.load_state_dict(plain_state, strict=False)
    # BatchNorm fills a missing num_batches_tracked itself, unreported.
    assert set(result.missing_keys) == {
        k for k in new if not k.endswith('num_batches_tracked')}
    assert result.unexpected_keys == []
    for key in provided:
        assert torch.equal(fresh.state_dict()[key], conv.state_dict()[key])


# ---------------------------------------------------------------- from_conv
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('geometry', list(GEOMETRIES))
@pytest.mark.parametrize('name', VARIANTS)
def test_from_conv_is_exact_or_refused_with_reason(name, geometry, training):
    cls = variant(name)
    conv = plain_conv(geometry, torch.float64).train(training)
    if cls.from_conv_unsupported_reason:
        with pytest.raises(FromConvUnsupportedError, match=name):
            cls.from_conv(conv)
        return
    layer = cls.from_conv(conv)
    assert type(layer) is cls and layer.training == training
    assert layer.is_init
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    x = inputs(layer, dtype=torch.float64)
    with torch.no_grad():
        assert_rel_close(layer(x), conv(x), 1e-10)
    # The same hyper-parameters come back through from_conv_kwargs().
    again = cls.from_conv(conv, **layer.from_conv_kwargs())
    assert again.extra_repr() == layer.extra_repr()


# --------------------------------------------------- caches and copies
@pytest.mark.parametrize('name', VARIANTS)
def test_eval_output_follows_in_place_updates_and_loads(name):
    layer = build(name).eval()
    other = build(name).eval()
    x = inputs(layer)
    with torch.no_grad():
        before = layer(x)
        assert torch.equal(layer(x), before)  # cached path, same result
        for param in layer.parameters():
            param.mul_(1.5)
        for buffer in layer.buffers():
            if buffer.is_floating_point():
                buffer.mul_(1.5)
        updated = layer(x)
        assert not torch.allclose(updated, before)
        assert torch.equal(updated, copy.deepcopy(layer)(x))
        layer.load_state_dict(other.state_dict())
        assert torch.equal(layer(x), other(x))
        layer.train()
        layer.eval()
        assert torch.equal(layer(x), other(x))


@pytest.mark.parametrize(
    'name', [n for n in VARIANTS if hasattr(build_reference_layer(
        variant(n)), 'kernel_cache')])
def test_kernel_cache_composes_once_in_eval_and_recomposes_on_change(
        name, monkeypatch):
    layer = build(name).eval()
    calls = []
    compose = layer.compose_kernel
    monkeypatch.setattr(layer, 'compose_kernel',
                        lambda: calls.append(1) or compose())
    x = inputs(layer)

    def composes(step) -> int:
        before = len(calls)
        step()
        return len(calls) - before

    with torch.no_grad():
        layer(x)
        assert composes(lambda: layer(x)) == 0  # cached
    # eval with grad enabled: a fresh graph that reaches the parameters.
    assert composes(lambda: layer(x).sum().backward()) == 1
    trained = [p for p in layer.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trained)
    torch.optim.SGD(trained, lr=0.1).step()
    with torch.no_grad():
        assert composes(lambda: layer(x)) == 1  # versions bumped
        state = build(name).state_dict()
        assert composes(lambda: layer.load_state_dict(state) and layer(x)) \
            == 1
        assert composes(lambda: layer.train().eval()(x)) == 1
        assert composes(lambda: layer.double()(x.double())) == 1
    layer.train()
    assert composes(lambda: (layer(x.double()), layer(x.double()))) == 2


@pytest.mark.parametrize(
    'name', [n for n in VARIANTS if hasattr(build_reference_layer(
        variant(n)), 'kernel_cache')])
def test_frozen_eval_layer_caches_and_passes_input_gradients(
        name, monkeypatch):
    """A frozen stage (eval, requires_grad=False) composes once, also after
    an inference-mode call, and still back-propagates to its input."""
    layer = build(name).eval().requires_grad_(False)
    calls = []
    compose = layer.compose_kernel
    monkeypatch.setattr(layer, 'compose_kernel',
                        lambda: calls.append(1) or compose())
    with torch.inference_mode():
        layer(inputs(layer))
    x = inputs(layer).requires_grad_()
    layer(x).sum().backward()
    layer(x).sum().backward()
    assert len(calls) == 2  # the inference-mode call, then one cached
    assert x.grad is not None


@pytest.mark.parametrize('name', VARIANTS)
def test_deepcopy_and_save_after_an_eval_forward_with_grad(name):
    layer = build(name).eval()
    x = inputs(layer)
    expected = layer(x)  # grad enabled: any cache must not hold a graph
    with torch.no_grad():
        layer(x)  # and a no_grad forward fills it
    clone = copy.deepcopy(layer)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch.save(layer, io.BytesIO())
    fresh = build(name).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(clone(x), expected.detach())
        assert torch.equal(fresh(x), expected.detach())


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize('name', VARIANTS)
def test_gradcheck(name):
    layer = build(name, dtype=torch.float64)
    x = inputs(layer, dtype=torch.float64, size=(4, 3)).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, ), fast_mode=True)
    params = dict(layer.named_parameters())
    names = tuple(n for n, p in params.items() if p.requires_grad)

    def functional(*values):
        return torch.func.functional_call(layer, dict(zip(names, values)),
                                          (x.detach(), ))

    tensors = tuple(params[n].detach().clone().requires_grad_()
                    for n in names)
    assert torch.autograd.gradcheck(functional, tensors, fast_mode=True)


@pytest.mark.parametrize('name', VARIANTS)
def test_channels_last_input(name):
    layer = build(name, dtype=torch.float64)
    x = inputs(layer, size=(8, 8), dtype=torch.float64)
    expected = layer(x)
    expected.square().sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    last = x.contiguous(memory_format=torch.channels_last)
    out = layer(last)
    out.square().sum().backward()
    assert_rel_close(out, expected, 1e-10)
    for grad, param in zip(grads, layer.parameters()):
        assert_rel_close(param.grad, grad, 1e-8)


# ---------------------------------------------------------------- autocast
def _autocast_dtypes():
    dtypes = [torch.bfloat16]
    try:
        with torch.autocast('cpu', dtype=torch.float16):
            torch.mm(torch.ones(2, 2), torch.ones(2, 2))
        dtypes.append(torch.float16)
    except RuntimeError:  # this torch has no fp16 CPU autocast
        pass
    return dtypes


@pytest.mark.parametrize('amp_dtype', _autocast_dtypes(), ids=str)
@pytest.mark.parametrize('name', VARIANTS)
def test_autocast_train_and_eval(name, amp_dtype):
    layer = build(name)
    x = inputs(layer, batch=3, size=(8, 8))
    target = torch.randn_like(layer(x))

    def loss_of(out):
        return (out.float() - target).square().mean()

    reference = copy.deepcopy(layer)
    reference_loss = loss_of(reference(x))
    reference_loss.backward()
    with torch.autocast('cpu', dtype=amp_dtype):
        loss = loss_of(layer(x))
    loss.backward()
    assert_rel_close(loss.detach(), reference_loss.detach(),
                     AMP_LOSS_RTOL[amp_dtype])
    for (pname, param), ref in zip(layer.named_parameters(),
                                   reference.parameters()):
        if not param.requires_grad:
            continue
        assert param.dtype == torch.float32, pname
        assert param.grad is not None and param.grad.dtype == torch.float32
        assert torch.isfinite(param.grad).all(), pname

    # Eval: an autocast forward leaves no low-precision state behind.
    layer.eval()
    with torch.no_grad():
        before = layer(x)
        with torch.autocast('cpu', dtype=amp_dtype):
            low = layer(x)
        after = layer(x)
    assert torch.equal(after, before)
    assert_rel_close(low.float(), before, AMP_LOSS_RTOL[amp_dtype])
    if layer.foldable:
        with torch.autocast('cpu', dtype=amp_dtype):
            folded = layer.fold()
        assert folded.weight.dtype == torch.float32
        assert torch.equal(folded.weight, layer.fold().weight)


# ------------------------------------------------------------ trace / ONNX
@pytest.mark.parametrize('name', VARIANTS)
def test_traces_with_any_batch_size(name):
    layer = build(name).eval()
    traced = torch.jit.trace(layer, inputs(layer, batch=2), check_trace=False)
    with torch.no_grad():
        for batch in (1, 3, 4):
            x = inputs(layer, batch=batch)
            assert_rel_close(traced(x), layer(x), 1e-5)


@pytest.mark.parametrize('name', VARIANTS)
def test_onnx_export_with_dynamic_batch(name, tmp_path):
    onnxruntime = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    layer = build(name).eval()
    path = str(tmp_path / f'{name}.onnx')
    with torch.no_grad():
        torch.onnx.export(layer, (inputs(layer, batch=2), ), path,
                          input_names=['x'], output_names=['y'],
                          dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}},
                          **torchscript_exporter_kwargs())
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    for batch in (1, 3):
        x = inputs(layer, batch=batch)
        with torch.no_grad():
            expected = layer(x)
        (got, ) = session.run(None, {'x': x.numpy()})
        assert_rel_close(torch.from_numpy(got), expected, 1e-4)


@pytest.mark.skipif(
    getattr(getattr(torch, 'export', None), 'Dim', None) is None,
    reason='torch.export dynamic shapes (torch.export.Dim) need torch >= 2.2')
@pytest.mark.parametrize('name', VARIANTS)
def test_torch_export_with_dynamic_batch(name):
    """``torch.export`` (what the dynamo ONNX exporter builds on)."""
    layer = build(name).eval()
    batch = torch.export.Dim('batch', min=1, max=64)
    program = torch.export.export(layer, (inputs(layer, batch=2), ),
                                  dynamic_shapes=({0: batch}, ))
    with torch.no_grad():
        for size in (1, 5):
            x = inputs(layer, batch=size)
            assert_rel_close(program.module()(x), layer(x), 1e-5)
