"""Conformance: where mmengine / mmcv / mmdet / torch treat a conv specially.

Each test is one row of ``docs/conformance.md`` and runs for every
registered variant (``conv_variants()``), so a new variant inherits it.
Rows checked elsewhere: empty batches (``test_conformance_empty_batch``),
ONNX opsets (``test_conformance_onnx_opsets``), two threads
(``test_conformance_threads``).
"""
import copy

import pytest
import torch
from mmcv.cnn import ConvModule, fuse_conv_bn, get_model_complexity_info
from mmdet.models.backbones.resnet import BasicBlock
from mmengine.model import BaseModule, revert_sync_batchnorm
from test_conv_contract import VARIANTS, assert_rel_close, build, inputs
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from mmconvplug.analysis import count_flops
from mmconvplug.fold import fold_model


def _conv_bn(name, **kwargs):
    """A ConvModule (variant, BN, ReLU) with trained-looking BN statistics."""
    module = ConvModule(4, 6, 3, padding=1, conv_cfg=dict(type=name),
                        norm_cfg=dict(type='BN'), **kwargs)
    with torch.no_grad():
        module.bn.running_mean.normal_(0, 0.2)
        module.bn.running_var.uniform_(0.5, 1.5)
        module.bn.weight.uniform_(0.5, 1.5)
        module.bn.bias.normal_(0, 0.2)
    return module.eval()


# ------------------------------------------------------- isinstance checks
@pytest.mark.parametrize('name', VARIANTS)
def test_a_variant_is_not_a_torch_conv(name):
    """The premise of every isinstance row: upstream code that asks
    ``isinstance(m, nn.Conv2d / _ConvNd)`` does not see a variant."""
    layer = build(name)
    assert not isinstance(layer, (nn.Conv2d, _ConvNd))


# ---------------------------------------------------- init_cfg class names
class _Holder(BaseModule):

    def __init__(self, name, init_cfg):
        super().__init__(init_cfg=init_cfg)
        self.plain = nn.Conv2d(4, 4, 3, padding=1)
        self.variant = build(name)


@pytest.mark.parametrize('name', VARIANTS)
def test_init_cfg_layer_conv2d_does_not_match_a_variant(name):
    """``layer='Conv2d'`` matches class (and base class) names: it sets the
    plain conv, not the variant, which initialises itself (its
    ``init_weights``, called by mmengine after the parent's init_cfg)."""
    holder = _Holder(name, dict(type='Constant', layer='Conv2d', val=0.5,
                                bias=0.25))
    holder.init_weights()
    assert (holder.plain.weight == 0.5).all()
    assert (holder.plain.bias == 0.25).all()
    for key, tensor in holder.variant.state_dict().items():
        if tensor.is_floating_point() and tensor.numel() > 1:
            assert not (tensor == 0.5).all(), key
    with torch.no_grad():
        assert holder.variant(inputs(holder.variant)).abs().sum() > 0


# ----------------------------------------------------- revert_sync_batchnorm
@pytest.mark.parametrize('name', VARIANTS)
def test_revert_sync_batchnorm_keeps_the_variant(name):
    module = _conv_bn(name)
    x = inputs(module.conv)
    with torch.no_grad():
        expected = module(x)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(module))
    reverted = revert_sync_batchnorm(synced).eval()
    assert type(reverted.conv) is type(module.conv)
    assert not any(isinstance(m, nn.SyncBatchNorm)
                   for m in reverted.modules())
    assert reverted.state_dict().keys() == module.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(reverted(x), expected)


# --------------------------------------------- BN fusion: never into a basis
@pytest.mark.parametrize('name', VARIANTS)
def test_mmcv_fuse_conv_bn_leaves_a_variant_and_its_bn(name):
    """mmcv's ``fuse_conv_bn`` fuses a BN into the ``nn.Conv2d`` before it;
    a variant is not one: its BN stays (not fused into the basis kernel)
    and the result is exact. ``fold_model(fuse_bn=True)`` does fuse it."""
    module = _conv_bn(name)
    x = inputs(module.conv)
    with torch.no_grad():
        expected = module(x)
        fused = fuse_conv_bn(copy.deepcopy(module))
        assert type(fused.conv) is type(module.conv)
        assert isinstance(fused.bn, _BatchNorm)
        assert_rel_close(fused(x), expected, 1e-6)
        plain = fuse_conv_bn(copy.deepcopy(_conv_bn('Conv2d')))
        assert isinstance(plain.bn, nn.Identity)  # the control is fused
        folded = fold_model(module, fuse_bn=True)
        assert_rel_close(folded(x), expected, 1e-5)
        if module.conv.foldable:
            assert isinstance(folded.bn, nn.Identity)


@pytest.mark.parametrize('name', VARIANTS)
def test_conv_module_efficient_conv_bn_eval_is_exact_for_a_variant(name):
    """mmcv's on-the-fly fusion scales ``conv.weight`` (a variant's basis,
    not its kernel) and calls ``_conv_forward``: with the compat fix a
    variant takes ``bn(conv(x))``, exactly the unfused module."""
    efficient = _conv_bn(name, efficient_conv_bn_eval=True)
    reference = _conv_bn(name)
    reference.load_state_dict(efficient.state_dict())
    assert efficient.efficient_conv_bn_eval_forward is not None
    x = inputs(efficient.conv)
    with torch.no_grad():
        assert torch.equal(efficient(x), reference(x))
    assert 'forward' not in vars(efficient.conv)  # mmcv's patch undone


@pytest.mark.parametrize('name', VARIANTS)
def test_mmengine_efficient_conv_bn_eval_skips_a_variant(name):
    """mmengine's Runner option ``efficient_conv_bn_eval`` pairs a
    ``_ConvNd`` with the BN after it in an fx graph; a variant is skipped
    (exact, not fused)."""
    from mmengine.model.efficient_conv_bn_eval import (
        turn_on_efficient_conv_bn_eval,
    )
    for conv_type in (name, 'Conv2d'):  # the plain one is the control
        module = _conv_bn(conv_type)
        model = nn.Sequential()
        model.add_module('block', nn.Sequential(module.conv, module.bn))
        x = inputs(module.conv)
        with torch.no_grad():
            expected = model(x)
        turn_on_efficient_conv_bn_eval(model, ['block'])
        code = model.block.forward.__self__.code
        assert ('efficient_conv_bn_eval' in code) == (conv_type == 'Conv2d')
        with torch.no_grad():
            assert_rel_close(model(x), expected, 1e-5)


# ------------------------------------------------------------------ FLOPs
@pytest.mark.parametrize('name', VARIANTS)
def test_flop_counters(name):
    """mmengine's ``FlopAnalyzer`` (jit-traced ops) counts what a variant
    runs; mmcv's ``get_model_complexity_info`` (hooks keyed by module type)
    misses a functional conv. After folding both count the stock conv."""
    layer = build(name).eval()
    x = inputs(layer, batch=1, size=(8, 8))
    cin, cout, k = layer.in_channels, layer.out_channels, layer.kernel_size
    plain = nn.Conv2d(cin, cout, k, layer.stride, layer.padding,
                      layer.dilation, layer.groups).eval()
    plain_flops = count_flops(plain, x)
    assert plain_flops > 0
    assert count_flops(layer, x) > 0
    def mmcv_flops(model):
        flops, _ = get_model_complexity_info(
            model, tuple(x.shape[1:]), print_per_layer_stat=False,
            as_strings=False)
        return flops

    if not any(isinstance(m, nn.Conv2d) for m in layer.modules()):
        # its conv is functional: mmcv's hooks do not see it
        assert mmcv_flops(layer) < mmcv_flops(plain)
    if layer.foldable:
        folded = fold_model(layer)
        assert type(folded) is nn.Conv2d
        assert count_flops(folded, x) == plain_flops
        assert mmcv_flops(folded) == mmcv_flops(plain)


# ---------------------------------------------------------------- with_cp
@pytest.mark.parametrize('name', VARIANTS)
def test_with_cp_gives_the_gradients_without_it(name):
    """mmdet's ``BasicBlock(with_cp=True)`` recomputes the block (variants
    included) in backward; the gradients are those without checkpointing."""
    torch.manual_seed(0)
    block = BasicBlock(8, 8, conv_cfg=dict(type=name)).double()
    checkpointed = BasicBlock(8, 8, conv_cfg=dict(type=name),
                              with_cp=True).double()
    checkpointed.load_state_dict(block.state_dict())
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    grads = []
    for model in (block, checkpointed):
        model.train()
        xi = x.clone().requires_grad_()
        model(xi).square().sum().backward()
        grads.append([xi.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        assert_rel_close(b, a, 1e-10)


# ---------------------------------------------------------- torch.compile
@pytest.mark.parametrize('name', VARIANTS)
def test_torch_compile_aot_eager(name):
    """``torch.compile`` (``aot_eager``: dynamo + AOTAutograd, no codegen)
    gives eager's outputs and gradients, train and eval."""
    torch._dynamo.reset()
    layer = build(name, dtype=torch.float64)
    reference = copy.deepcopy(layer)
    compiled = torch.compile(layer, backend='aot_eager', dynamic=False)
    x = inputs(layer, dtype=torch.float64)
    out, expected = compiled(x), reference(x)
    assert_rel_close(out, expected, 1e-10)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (pname, param), ref in zip(layer.named_parameters(),
                                   reference.parameters()):
        if param.requires_grad:
            assert_rel_close(param.grad, ref.grad, 1e-10)
    layer.eval()
    reference.eval()
    with torch.no_grad():
        assert_rel_close(compiled(x), reference(x), 1e-10)
    torch._dynamo.reset()
