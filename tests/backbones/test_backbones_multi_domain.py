"""MultiDomainResNet26: DWSConv + DomainBN everywhere, domain switching,
training one domain only, the per-domain overhead and folding."""
import pytest
import torch

from mmconvplug import fold_model
from mmconvplug.backbones import (
    DomainBN,
    MultiDomainResNet26,
    domain_overhead,
    domain_parameters,
)
from mmconvplug.convs.domain import count_domain_parameters, set_active_domain


def _randomise_domain_params(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(std=0.1)
                module.running_mean.normal_(std=0.1)
                module.running_var.uniform_(0.5, 1.5)
            elif isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(std=0.1)


@pytest.mark.parametrize('arch, widths, num_norms', [
    ('official', (128, 256, 512), 25 + 1),  # + the final per-domain BN
    ('rebuffi', (64, 128, 256), 25),
])
def test_architecture_depth_and_outputs(arch, widths, num_norms):
    model = MultiDomainResNet26(arch=arch, num_domains=3).eval()
    convs = [m for m in model.modules() if type(m).__name__ == 'DWSConv']
    assert len(convs) == 1 + 3 * 4 * 2  # stem + 3 stages x 4 blocks x 2
    assert sum(isinstance(m, DomainBN) for m in model.modules()) == num_norms
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, widths[0], 32, 32),
                                              (1, widths[1], 16, 16),
                                              (1, widths[2], 8, 8)]


def test_domains_give_different_functions_and_switch_back():
    model = MultiDomainResNet26(num_domains=2).eval()
    _randomise_domain_params(model)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        first = model(x)[-1]
        set_active_domain(model, 1)
        second = model(x)[-1]
        set_active_domain(model, 0)
        again = model(x)[-1]
    assert not torch.allclose(first, second)
    assert torch.equal(first, again)


def test_train_domain_only_trains_exactly_that_domain():
    model = MultiDomainResNet26(
        num_domains=2, active_domain=1, train_domain_only=True,
        log_overhead=False)
    model.train()
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in domain_parameters(model, 1)}
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == count_domain_parameters(model)
    model(torch.rand(2, 3, 32, 32))[-1].mean().backward()
    pointwise = model.stages[0][0].conv1.pointwise.weight
    assert pointwise.grad is None
    assert model.stages[0][0].conv1.depthwise[1].weight.grad is not None
    assert model.stages[0][0].conv1.depthwise[0].weight.grad is None


def test_domain_overhead_is_small_relative_to_shared():
    overhead = domain_overhead(MultiDomainResNet26(num_domains=2))
    assert overhead['total'] == (overhead['shared']
                                 + 2 * overhead['per_domain'])
    # Depthwise kernels + BNs: a small fraction of the pointwise weights.
    assert 0 < overhead['overhead_percent'] < 10


@pytest.mark.parametrize('arch', ['official', 'rebuffi'])
def test_fold_keeps_the_active_domain_function(arch):
    model = MultiDomainResNet26(arch=arch, num_domains=2,
                                active_domain=1).eval()
    _randomise_domain_params(model)
    x = torch.rand(1, 3, 32, 32)
    folded, report = fold_model(model, return_report=True)
    # one active domain: every DWSConv folds to one plain conv
    assert len(report.folded) == 25 and not report.kept
    assert not any(type(m).__name__ == 'DWSConv' for m in folded.modules())
    with torch.no_grad():
        for a, b in zip(model(x), folded(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(out_indices=(3, )), ValueError, 'out_indices'),
    (dict(strides=(2, 2)), ValueError, 'strides'),
    (dict(num_domains=2, active_domain=2), IndexError, 'out of range'),
])
def test_bad_settings_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        MultiDomainResNet26(**kwargs)


def test_domain_bn_validates_num_domains():
    with pytest.raises(ValueError, match='num_domains'):
        DomainBN(8, num_domains=0)
