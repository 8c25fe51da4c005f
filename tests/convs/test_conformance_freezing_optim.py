"""Conformance: freezing and optimizer groups, checked for every variant.

The entries of ``docs/conformance.md``: a variant behaves as
the conv it replaces

* under ``requires_grad`` / ``eval()`` freezing (``frozen_stages``), right
  after the build, after ``train()`` and after ``init_weights()``, whether
  it came in through ``conv_cfg`` or a ``conv_swap`` (``from_conv``);
* when folded (``fold()``, ``fold_model`` with and without BN fusion): a
  frozen variant folds to frozen modules, a trainable one to trainable ones;
* in mmengine's ``DefaultOptimWrapperConstructor`` with ``paramwise_cfg``
  (``dwconv_decay_mult``, ``bias_decay_mult``, ``bias_lr_mult``,
  ``norm_decay_mult``, ``flat_decay_mult``, ``custom_keys``,
  ``bypass_duplicate``): its tensors get the groups of the conv's tensors,
  its own new kernel tensors the group of the conv's weight.

Parametrized by :func:`mmconvplug.convs.conv_variants` (mmconvplug's own
classes): a new variant gets every test by being registered. The DDP entry
(default flags, 2 processes) is in
``tests/distributed/test_distributed_frozen_stages.py``.
"""
import copy
from collections import OrderedDict

import pytest
import torch
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.optim import DefaultOptimWrapperConstructor, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

from mmconvplug.backbones import MobileNetV1
from mmconvplug.convs import conv_variants
from mmconvplug.convs.base import build_reference_layer
from mmconvplug.fold import fold_model
from mmconvplug.swap.spec import swappable_variants

VARIANTS = sorted(name for name, cls in conv_variants().items()
                  if cls.__module__.startswith('mmconvplug.'))
SWAPPABLE = [name for name in VARIANTS if name in swappable_variants()]
FOLDABLE = [name for name in VARIANTS
            if build_reference_layer(conv_variants()[name]).foldable]
#: How a variant reaches a model: every variant through ``conv_cfg``, those
#: with an exact ``from_conv`` through a ``conv_swap`` as well.
ROUTES = [(name, 'conv_cfg') for name in VARIANTS] + [
    (name, 'conv_swap') for name in SWAPPABLE]
FROZEN_PREFIXES = ('conv1', 'norm1', 'bn1', 'layer1')
BASE_LR, BASE_WD = 0.1, 1e-4


# ----------------------------------------------------------------- helpers
def resnet18(name=None, route='conv_cfg', frozen_stages=1) -> nn.Module:
    """mmdet's ResNet-18 (narrow), stock or with ``name`` via ``route``."""
    import mmdet.models  # noqa: F401  (registers ResNet)
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = dict(type='ResNet', depth=18, base_channels=8,
               frozen_stages=frozen_stages, norm_eval=False, init_cfg=None)
    if name is not None and route == 'conv_cfg':
        cfg['conv_cfg'] = dict(type=name)
    elif name is not None:
        cfg['conv_swap'] = dict(type=name)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return MODELS.build(cfg)


def in_frozen_stage(name: str) -> bool:
    return name.split('.')[0] in FROZEN_PREFIXES


def trainable_frozen(model: nn.Module) -> list:
    return [n for n, p in model.named_parameters()
            if p.requires_grad and in_frozen_stage(n)]


def modes(model: nn.Module) -> dict:
    return {n: m.training for n, m in model.named_modules() if n}


def assert_modes_match_stock(model: nn.Module, stock: nn.Module) -> None:
    """Every module has the mode of the stock module at its name, or of
    the variant (the replaced conv's name) it belongs to."""
    stock_modes, own = modes(stock), modes(model)
    for name, training in own.items():
        owner = name
        while owner not in stock_modes:
            owner = owner.rpartition('.')[0]
        assert training == stock_modes[owner], (name, training)


def trainable_names(model: nn.Module) -> set:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def plain_conv(depthwise: bool, bias: bool = True) -> nn.Conv2d:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Conv2d(8, 8, 3, padding=1, groups=8 if depthwise else 1,
                         bias=bias)


def groups_of(model: nn.Module, paramwise_cfg: dict) -> dict:
    """``{parameter name: its group's settings}`` as the Runner builds them
    (``build_optim_wrapper``, mmengine's default constructor)."""
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='SGD', lr=BASE_LR, momentum=0.9,
                       weight_decay=BASE_WD),
        paramwise_cfg=paramwise_cfg))
    names = {id(p): n for n, p in model.named_parameters()}
    found = {}
    for group in wrapper.optimizer.param_groups:
        settings = {k: v for k, v in group.items() if k != 'params'}
        for param in group['params']:
            assert names[id(param)] not in found, 'in two groups'
            found[names[id(param)]] = settings
    return found


#: paramwise_cfg cases: each rule mmengine's constructor applies to a conv.
PARAMWISE = {
    'dwconv': dict(dwconv_decay_mult=0.),
    'bias_and_dwconv': dict(bias_decay_mult=0.5, dwconv_decay_mult=0.,
                            bias_lr_mult=2.),
    'flat': dict(flat_decay_mult=0.3),
    'norm': dict(norm_decay_mult=0., dwconv_decay_mult=0.25),
    'custom_keys': dict(custom_keys={'layer': dict(lr_mult=0.5,
                                                   decay_mult=0.3)},
                        dwconv_decay_mult=0.),
}


# ---------------------------------------------------- freezing: from_conv
@pytest.mark.parametrize('name', SWAPPABLE)
def test_from_conv_copies_mode_and_requires_grad(name):
    cls = conv_variants()[name]
    frozen = plain_conv(depthwise=False).eval().requires_grad_(False)
    layer = cls.from_conv(frozen)
    assert not layer.training
    assert not any(m.training for m in layer.modules())
    assert trainable_names(layer) == set()

    half = plain_conv(depthwise=False)
    half.weight.requires_grad_(False)  # weight frozen, bias trained
    layer = cls.from_conv(half)
    assert layer.training
    assert trainable_names(layer) == {'bias'}

    layer = cls.from_conv(plain_conv(depthwise=False))
    assert layer.training and all(p.requires_grad
                                  for p in layer.parameters())


@pytest.mark.parametrize('name,route', ROUTES)
def test_variant_in_a_frozen_stage_is_frozen_as_the_stock_model(
        name, route):
    """ResNet-18 ``frozen_stages=1``: no trainable tensor in the stem and
    layer1 right after the build (what DDP registers when the Runner wraps
    the model), after ``init_weights()`` and after ``train()``; every module
    in the stock model's mode."""
    stock, model = resnet18(), resnet18(name, route)
    assert trainable_frozen(stock) == []
    assert trainable_frozen(model) == []
    assert_modes_match_stock(model, stock)
    assert any(p.requires_grad for p in model.parameters())
    model.init_weights()
    stock.init_weights()
    assert trainable_frozen(model) == []
    for mode in (True, False, True):
        model.train(mode)
        stock.train(mode)
        assert trainable_frozen(model) == []
        assert_modes_match_stock(model, stock)


# ------------------------------------------------------- freezing: fold
@pytest.mark.parametrize('name', FOLDABLE)
def test_fold_of_a_frozen_variant_is_frozen(name):
    layer = build_conv_layer(dict(type=name), 8, 8, 3, padding=1)
    folds = {'fold': lambda: layer.fold()}
    if hasattr(layer, 'fold_separable'):
        folds['fold_separable'] = layer.fold_separable
    for build in folds.values():
        layer.requires_grad_(True)
        assert all(p.requires_grad for p in build().parameters())
        layer.requires_grad_(False)
        assert not any(p.requires_grad for p in build().parameters())
        assert not any(p.requires_grad for p in fold_model(
            nn.Sequential(layer)).parameters())
    layer.requires_grad_(True)
    if isinstance(layer._parameters.get('bias'), nn.Parameter):
        layer.bias.requires_grad_(False)
        folded = layer.fold()
        assert folded.weight.requires_grad and not folded.bias.requires_grad


@pytest.mark.parametrize('name', FOLDABLE)
def test_conv_module_with_a_variant_fuses_as_a_plain_one(name):
    """``fold_model(fuse_bn=True)`` of a ConvModule (conv + BN): the fused
    conv is frozen / trainable exactly as with a plain conv inside."""
    for frozen in (True, False):
        results = []
        for conv_cfg in (None, dict(type=name)):
            module = ConvModule(8, 8, 3, padding=1, conv_cfg=conv_cfg,
                                norm_cfg=dict(type='BN')).eval()
            module.requires_grad_(not frozen)
            fused = fold_model(module, fuse_bn=True)
            assert type(fused.conv) is nn.Conv2d
            results.append({n: p.requires_grad
                            for n, p in fused.named_parameters()})
        assert results[0] == results[1]
        assert set(results[0].values()) == {not frozen}


@pytest.mark.parametrize(
    'name,route', [r for r in ROUTES if r[0] in FOLDABLE])
@pytest.mark.parametrize('fuse_bn', [False, True])
def test_folded_frozen_resnet_trains_what_the_stock_model_trains(
        name, route, fuse_bn):
    """A folded ``frozen_stages=1`` ResNet-18 (DO-Conv: 5 trainable
    stem/layer1 weights before) trains what the folded stock model trains
    (a DWSConv fold also has a bias, from its norm: trained outside the
    frozen stages)."""
    model = fold_model(resnet18(name, route), fuse_bn=fuse_bn)
    stock = fold_model(resnet18(), fuse_bn=fuse_bn)
    assert trainable_frozen(model) == []
    stock_flags = {n: p.requires_grad for n, p in stock.named_parameters()}
    for key, param in model.named_parameters():
        expected = stock_flags.get(key, not in_frozen_stage(key))
        assert param.requires_grad == expected, key


# ------------------------------------------------------------ optimizer
@pytest.mark.parametrize('case', sorted(PARAMWISE))
@pytest.mark.parametrize('depthwise', [True, False],
                         ids=['depthwise', 'dense'])
@pytest.mark.parametrize('name', SWAPPABLE)
def test_variant_from_a_conv_gets_the_conv_groups(name, depthwise, case):
    """The replaced tensors get the stock conv's groups (a depthwise kernel:
    ``dwconv_decay_mult``); the variant's own new kernel tensors the group
    of the conv's weight; its sub-modules mmengine's rules for them."""
    cfg = PARAMWISE[case]
    conv = plain_conv(depthwise)
    stock = groups_of(nn.Sequential(OrderedDict(layer=conv)), cfg)
    layer = conv_variants()[name].from_conv(conv)
    got = groups_of(nn.Sequential(OrderedDict(layer=layer)), cfg)
    assert set(got) == {f'layer.{n}' for n, _ in layer.named_parameters()}
    for key, settings in got.items():
        own = key.count('.') == 1
        if key in stock:
            assert settings == stock[key], key
        elif own:  # a new kernel tensor: D_delta, refocus_weight, ...
            assert settings == stock['layer.weight'], key
    if depthwise and 'dwconv_decay_mult' in cfg and 'custom_keys' not in cfg:
        assert got['layer.' + next(
            n for n, _ in layer.named_parameters(recurse=False)
            if n != 'bias')]['weight_decay'] == BASE_WD * cfg[
                'dwconv_decay_mult']


@pytest.mark.parametrize('case', sorted(PARAMWISE))
@pytest.mark.parametrize('name', VARIANTS)
def test_every_variant_parameter_gets_the_documented_group(name, case):
    """A variant built at a depthwise geometry (as ``conv_cfg`` builds it):
    its own tensors get the depthwise conv's groups (``bias`` that of the
    conv's bias, the others that of its weight); the parameters of its
    sub-modules (routing ``nn.Linear``, inner convs and norms) get what
    mmengine gives those modules."""
    cfg = PARAMWISE[case]
    stock = groups_of(nn.Sequential(OrderedDict(
        layer=plain_conv(depthwise=True))), cfg)
    layer = build_conv_layer(dict(type=name), 8, 8, 3, padding=1, groups=8,
                             bias=True)
    got = groups_of(nn.Sequential(OrderedDict(layer=layer)), cfg)
    assert set(got) == {f'layer.{n}' for n, _ in layer.named_parameters()
                        if _.requires_grad}
    constructor = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=BASE_LR, weight_decay=BASE_WD)),
        cfg)
    original = DefaultOptimWrapperConstructor.add_params._mmconvplug_original
    for param_name, _ in layer.named_parameters(recurse=False):
        role = 'bias' if param_name == 'bias' else 'weight'
        assert got[f'layer.{param_name}'] == stock[f'layer.{role}']
    for child_name, child in layer.named_children():
        expected = []
        original(constructor, expected, child, prefix=f'layer.{child_name}')
        names = {id(p): f'layer.{child_name}.{n}'
                 for n, p in child.named_parameters()}
        for group in expected:
            settings = {k: v for k, v in group.items() if k != 'params'}
            for param in group['params']:
                assert {k: got[names[id(param)]][k] for k in settings} \
                    == settings, names[id(param)]


@pytest.mark.parametrize('name', SWAPPABLE)
def test_frozen_variant_tensors_are_left_out_as_the_conv_tensors(name):
    conv = plain_conv(depthwise=True).requires_grad_(False)
    model = nn.Sequential(OrderedDict(
        plain=conv, layer=conv_variants()[name].from_conv(conv),
        head=nn.Conv2d(8, 2, 1)))
    assert set(groups_of(model, PARAMWISE['dwconv'])) == {
        'head.weight', 'head.bias'}


def tied_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and sub-modules are
    ``module``'s own (tied weights)."""
    twin = copy.deepcopy(module)
    for name, param in module.named_parameters(recurse=False):
        setattr(twin, name, param)
    for name, child in module.named_children():
        setattr(twin, name, child)
    return twin


@pytest.mark.parametrize('name', SWAPPABLE)
def test_bypass_duplicate_skips_tied_variant_tensors_as_tied_conv_tensors(
        name):
    conv = plain_conv(depthwise=True)
    layer = conv_variants()[name].from_conv(conv)
    cfg = dict(bypass_duplicate=True, dwconv_decay_mult=0.)
    stock = groups_of(nn.Sequential(OrderedDict(a=conv, b=tied_copy(conv))),
                      cfg)
    got = groups_of(nn.Sequential(OrderedDict(a=layer, b=tied_copy(layer))),
                    cfg)
    assert sorted(stock) == ['a.bias', 'a.weight']
    assert set(got) == {f'a.{n}' for n, _ in layer.named_parameters()}
    for module in (conv, layer):
        with pytest.raises(ValueError, match='more than one parameter group'):
            groups_of(nn.Sequential(OrderedDict(a=module,
                                                b=tied_copy(module))),
                      dict(dwconv_decay_mult=0.))


def test_mobilenet_v1_condconv_depthwise_block_gets_the_plain_groups():
    """MobileNetV1 with ``dwconv_decay_mult=0``: the CondConv depthwise
    block's experts get decay 0 as the plain depthwise block's kernel
    (1e-4 before); the pointwise convs keep the full decay."""
    kwargs = dict(widen_factor=0.25, out_indices=(12, ))
    plain = groups_of(MobileNetV1(**kwargs), PARAMWISE['dwconv'])
    cond = groups_of(MobileNetV1(condconv_blocks=(1, ), **kwargs),
                     PARAMWISE['dwconv'])
    for key in ('blocks.1.0.conv.weight', 'blocks.1.1.conv.weight'):
        assert cond[key] == plain[key], key
    assert plain['blocks.1.0.conv.weight']['weight_decay'] == 0.
    assert plain['blocks.1.1.conv.weight']['weight_decay'] == BASE_WD
    # The routing layer is an nn.Linear: mmengine's rules for one.
    assert cond['blocks.1.0.conv.routing.weight']['weight_decay'] == BASE_WD
