"""swap_convs on small modules: selection, exactness, keys, init, errors."""
import copy

import pytest
import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from mmconvplug.convs.base import is_conv_variant
from mmconvplug.swap import ConvSwapConfigError, conv_swap_reports, swap_convs


class Head(BaseModule):
    """A head as mmdet writes them: a ConvModule, plain predictors, and an
    init_cfg with a layer-type rule and a by-name override."""

    def __init__(self, channels=8):
        super().__init__(init_cfg=dict(
            type='Normal', layer='Conv2d', std=0.01,
            override=dict(type='Normal', name='cls', std=0.3, bias=-2.0)))
        self.conv = ConvModule(channels, channels, 3, padding=1,
                               norm_cfg=dict(type='BN'))
        self.cls = nn.Conv2d(channels, 3, 3, padding=1)
        self.reg = nn.Conv2d(channels, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        return self.cls(x), self.reg(x)


class Net(BaseModule):
    """A stem (Kaiming init), a depthwise conv, a shared conv, a head."""

    def __init__(self):
        super().__init__(init_cfg=dict(type='Kaiming', layer='Conv2d'))
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                  nn.ReLU())
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        shared = nn.Conv2d(8, 8, 3, padding=1)
        self.shared_a = shared
        self.block = nn.Sequential(shared)  # the same module twice
        self.head = Head()

    def forward(self, x):
        x = self.dw(self.stem(x))
        x = self.block(self.shared_a(x))
        return self.head(x)


def _outputs(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def _assert_same(a, b, rel=0.0):
    for u, v in zip(a, b):
        scale = u.abs().max().clamp_min(1e-12)
        assert ((u - v).abs().max() / scale).item() <= rel


def test_swap_is_exact_and_keeps_state_dict_keys():
    net = Net()
    plain = copy.deepcopy(net)
    report = swap_convs(net, dict(type='DOConv'), log=False)
    swapped = {name for name, m in net.named_modules() if is_conv_variant(m)}
    assert swapped == {'stem.0', 'dw', 'shared_a', 'head.conv.conv',
                       'head.cls', 'head.reg'}
    # the shared conv is one variant in both places
    assert net.block[0] is net.shared_a
    assert report.swapped_names == [
        'stem.0', 'dw', 'shared_a', 'head.conv.conv', 'head.cls', 'head.reg']
    # every plain key is still there; the variants only add their own
    plain_keys, keys = set(plain.state_dict()), set(net.state_dict())
    assert plain_keys <= keys
    new = {f'{name}.{key}'
           for name, m in net.named_modules(remove_duplicate=False)
           if is_conv_variant(m) for key in m.new_tensor_names()}
    assert keys - plain_keys <= new
    x = torch.randn(2, 3, 16, 16)
    _assert_same(_outputs(plain, x), _outputs(net, x))
    # a plain checkpoint loads as into the plain model
    missing, unexpected = net.load_state_dict(plain.state_dict(),
                                              strict=False)
    assert not unexpected and set(missing) <= new


def test_include_exclude_and_filters_select_and_report_why():
    net = Net()
    report = swap_convs(
        net,
        dict(type='RefConv', include=['head', 'st*'], exclude='head.cls',
             min_kernel_size=2, groups=1, stride=1),
        log=False)
    assert report.swapped_names == ['head.conv.conv']
    reasons = {s.name: s.reason for s in report.skipped}
    assert reasons['head.cls'] == "excluded by 'head.cls'"
    assert 'min_kernel_size=2' in reasons['head.reg']
    assert 'stride=(2, 2)' in reasons['stem.0']
    assert 'dw' not in reasons  # not under include: not reported
    assert 'head.conv.conv' in report.table()
    assert report.params_after - report.params_before == (
        report.swapped[0].params_after - report.swapped[0].params_before)


def test_groups_filter_and_kernel_size_list():
    net = Net()
    report = swap_convs(net, dict(type='DOConv', groups=8,
                                  kernel_size=[3, (1, 1)]), log=False)
    assert report.swapped_names == ['dw']


def test_a_list_of_blocks_applies_in_order():
    net = Net()
    report = swap_convs(net, [
        dict(type='DOConv', include='head'),
        dict(type='CondConv', include=['stem', 'head'], num_experts=2),
    ], log=False)
    assert type(net.head.cls).__name__ == 'DOConv'
    assert type(net.stem[0]).__name__ == 'CondConv'
    assert report.swapped_names == [
        'head.conv.conv', 'head.cls', 'head.reg', 'stem.0']
    assert report.skipped == []  # 'already a variant': reported as swapped


def test_a_conv_skipped_by_one_block_and_swapped_by_the_next():
    net = Net()
    report = swap_convs(net, [
        dict(type='RefConv', groups=1, min_kernel_size=2),
        dict(type='RefConv', include='dw', map_groups=2),
    ], log=False)
    assert 'dw' in report.swapped_names and net.dw.map_groups == 2
    skipped = [s.name for s in report.skipped]
    assert 'dw' not in skipped
    assert skipped == ['head.reg']  # 1x1, once


@pytest.mark.parametrize('pattern, closest', [
    ('heads', "'head'"),
    ('head.clss', "'head.cls'"),
    ('stem.[5-9]', "'stem.0'"),
])
def test_a_pattern_matching_nothing_names_the_closest_modules(
        pattern, closest):
    net = Net()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ConvSwapConfigError) as info:
        swap_convs(net, dict(type='DOConv', include=[pattern]), log=False)
    message = str(info.value)
    assert repr(pattern) in message and 'matches no module' in message
    assert closest in message
    assert not any(is_conv_variant(m) for m in net.modules())
    assert net.state_dict().keys() == before.keys()


def test_an_exclude_pattern_matching_nothing_is_an_error_too():
    with pytest.raises(ConvSwapConfigError, match="exclude pattern 'hed'"):
        swap_convs(Net(), dict(type='DOConv', exclude='hed'), log=False)


def test_a_block_that_swaps_nothing_says_why():
    with pytest.raises(ConvSwapConfigError,
                       match='swaps no conv.*min_kernel_size=5'):
        swap_convs(Net(), dict(type='DOConv', min_kernel_size=5), log=False)


@pytest.mark.parametrize('block, match', [
    (dict(include='head'), 'needs type='),
    (dict(type='DOConvv'), "'DOConvv' is not a conv variant"),
    (dict(type='SCConv'), 'SCConv has no exact from_conv'),
    (dict(type='DOConv', map_size=3), r"\['map_size'\] is neither"),
    (dict(type='DOConv', min_kernel_size=0), 'min_kernel_size'),
    (dict(type='DOConv', include=['']), 'conv_swap.include'),
    (dict(type='DOConv', stride='2'), 'conv_swap.stride'),
    ('DOConv', 'must be a dict'),
    ([], 'empty list'),
])
def test_malformed_blocks_are_refused_with_the_fix(block, match):
    with pytest.raises(ConvSwapConfigError, match=match):
        swap_convs(Net(), block, log=False)


def test_swap_draws_no_random_numbers():
    net = Net()
    state = torch.get_rng_state()
    swap_convs(net, dict(type='CondConv', num_experts=3), log=False)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize('variant', ['DOConv', 'RefConv', 'CondConv'])
def test_init_weights_gives_the_stock_init(variant):
    """Seeded, the swapped model initialises to exactly the stock model:
    layer-type rules, by-name overrides and ConvModule's own init reach the
    swapped convs, and the variants' parameters stay the same objects."""
    torch.manual_seed(1)
    stock = Net()
    stock.init_weights()
    torch.manual_seed(1)
    net = Net()
    swap_convs(net, dict(type=variant), log=False)
    params = dict(net.named_parameters())
    net.init_weights()
    assert all(p is params[n] for n, p in net.named_parameters())
    # the by-name override reached the swapped predictor
    x = torch.randn(2, 3, 16, 16)
    rel = 1e-6 if variant == 'CondConv' else 0.0  # expert sums round
    _assert_same(_outputs(stock, x), _outputs(net, x), rel)
    assert type(net.head.cls).__name__ == variant


def test_init_weights_of_a_swapped_submodule_inside_a_parent():
    """A conv_swap on a child (e.g. a backbone-level block): the parent's
    init_weights calls the child's, inside mmengine's init bookkeeping."""

    class Parent(BaseModule):

        def __init__(self):
            super().__init__()
            self.net = Net()

        def forward(self, x):
            return self.net(x)

    torch.manual_seed(2)
    stock = Parent()
    stock.init_weights()
    torch.manual_seed(2)
    model = Parent()
    swap_convs(model.net, dict(type='DOConv', include='head'), log=False)
    model.init_weights()
    x = torch.randn(1, 3, 16, 16)
    _assert_same(_outputs(stock, x), _outputs(model, x))
    assert conv_swap_reports(model)[0].swapped_names == [
        'head.conv.conv', 'head.cls', 'head.reg']


def test_a_copy_of_a_swapped_model_initialises_its_own_variants():
    net = Net()
    swap_convs(net, dict(type='RefConv'), log=False)
    twin = copy.deepcopy(net)
    twin.init_weights()
    assert twin.init_weights.module is twin
    assert not torch.equal(twin.head.cls.weight, net.head.cls.weight)
    # the original is still uninitialised by the copy's call
    assert not net.init_weights.done


def test_init_weights_twice_keeps_the_trained_variants():
    net = Net()
    swap_convs(net, dict(type='DOConv'), log=False)
    net.init_weights()
    with torch.no_grad():
        net.head.cls.D_delta.add_(0.1)
    trained = copy.deepcopy(net.state_dict())
    net.init_weights()  # mmengine warns and does nothing
    for key, value in net.state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_a_plain_nn_module_can_be_swapped_and_initialised():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    plain = copy.deepcopy(net)
    swap_convs(net, dict(type='RefConv'), log=False)
    net.init_weights()  # as the Runner calls it: nothing to initialise
    x = torch.randn(1, 3, 8, 8)
    _assert_same([plain(x)], [net(x)])
