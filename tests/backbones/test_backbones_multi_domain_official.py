"""MultiDomainResNet26 is the official network of Guo et al. (AAAI 2019):
the paper's parameter counts, the official key layout loads strictly, and
the outputs equal an independent float64 rewrite of the official forward
(hard and soft sharing, every domain, eval mode, random BN statistics)."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from multi_domain_official_reference import flat_resnet26, official_state_dict

from mmconvplug.backbones import DomainBN, MultiDomainResNet26, domain_overhead
from mmconvplug.backbones.multi_domain_checkpoint import (
    convert_official_state_dict,
)
from mmconvplug.convs import DWSConv, set_active_domain


@pytest.fixture(autouse=True)
def _one_thread():
    """Small float64 convs: one thread avoids OpenMP hand-offs on a busy
    machine (10x faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _counts(model):
    """(shared pointwise, depthwise per domain, BN per domain)."""
    convs = [m for m in model.modules() if isinstance(m, DWSConv)]
    pointwise = sum(m.pointwise.weight.numel() for m in convs)
    depthwise = sum(m.depthwise[0].weight.numel() for m in convs)
    bn = sum(p.numel() for m in model.modules() if isinstance(m, DomainBN)
             for p in m.norms[0].parameters())
    bn += sum(p.numel() for m in convs if m.norms is not None
              for p in m.norms[0].parameters())
    return pointwise, depthwise, bn


def test_default_is_the_papers_network_to_the_parameter():
    model = MultiDomainResNet26(num_domains=3, log_overhead=False)
    assert model.arch == 'official'
    assert _counts(model) == (2_580_672, 60_507, 15_488)
    assert all(m.norms is None for m in model.modules()
               if isinstance(m, DWSConv))  # depthwise -> pointwise directly
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.stem)
    assert model.final_norm.num_features == 512
    overhead = domain_overhead(model)
    assert overhead['shared'] == 2_580_672
    assert overhead['per_domain'] == 60_507 + 15_488
    assert round(overhead['overhead_percent'], 2) == 2.94


def test_rebuffi_arch_is_the_earlier_default():
    model = MultiDomainResNet26(arch='rebuffi', num_domains=2,
                                log_overhead=False)
    assert _counts(model) == (645_216, 30_267, 13_958)
    overhead = domain_overhead(model)
    assert (overhead['shared'], overhead['per_domain']) == (645_216, 44_225)
    assert model.final_norm is None
    with torch.no_grad():
        outs = model.eval()(torch.rand(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [64, 128, 256]


def _compare(ours, state, x, domain, sharing):
    stages, _ = flat_resnet26(state, x, domain, sharing=sharing)
    with torch.no_grad():
        features = ours(x)
    assert len(features) == 3
    for a, b in zip(features, stages):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    return features


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_official_state_dict_loads_strictly_and_matches_every_domain():
    num_domains = 3
    state = official_state_dict(num_domains, seed=1)
    ours = MultiDomainResNet26(num_domains=num_domains,
                               log_overhead=False).double().eval()
    converted, dropped = convert_official_state_dict(state)
    # key for key: every official tensor but the FC heads has one place
    assert sorted(dropped) == sorted(k for k in state if k.startswith('fcs.'))
    assert set(converted) == set(ours.state_dict())
    assert len(converted) == len(state) - len(dropped)

    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        result = ours.load_state_dict(state, strict=True)  # the load hook
    finally:
        logger.removeHandler(records)
    assert not result.missing_keys and not result.unexpected_keys
    assert any('per-domain FC head' in m and 'fcs.0.weight' in m
               for m in records.messages)
    assert torch.equal(ours.stem[0].depthwise[2].weight,
                       state['conv1.depthwise.2.weight'])
    assert torch.equal(ours.final_norm.norms[1].running_var,
                       state['bns.1.0.running_var'])

    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    outputs = []
    for domain in range(num_domains):
        set_active_domain(ours, domain)
        outputs.append(_compare(ours, state, x, domain, sharing=False)[-1])
    assert not torch.allclose(outputs[0], outputs[1])


def test_official_checkpoint_without_batch_counters_loads_strictly():
    """Official checkpoints of PyTorch < 0.4 have no num_batches_tracked."""
    state = official_state_dict(2, seed=2, batches_tracked=False)
    ours = MultiDomainResNet26(num_domains=2, log_overhead=False).double()
    ours.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    _compare(ours.eval(), state, x, 0, sharing=False)


def test_official_soft_sharing_network_matches_with_the_gate():
    """resnet_sharing.FlatResNet26: 10 domains' depthwise kernels mixed by a
    gate in every separable conv (stem included), one BN per layer."""
    state = official_state_dict(10, sharing=True, seed=3)
    ours = MultiDomainResNet26(
        num_domains=10, gate=True, log_overhead=False,
        norm_cfg=dict(type='DomainBN', num_domains=1)).double().eval()
    assert ours.stem[0].gate[0].out_features == 3 // 4 + 1
    ours.load_state_dict(state, strict=True)
    assert torch.equal(ours.stages[2][3].conv2.gate[2].bias,
                       state['blocks.2.3.SeparableConv2d2.action_network.'
                             'fc2.bias'])
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    _compare(ours, state, x, 0, sharing=True)
    # the gate matters: the hard forward of domain 0 is another function
    hard, _ = flat_resnet26(state, x, 0, sharing=False)
    assert not torch.allclose(ours(x)[-1], hard[-1])


def test_earlier_default_checkpoint_is_refused_naming_the_arch(tmp_path):
    from mmengine.runner import load_checkpoint
    old = MultiDomainResNet26(arch='rebuffi', num_domains=2,
                              log_overhead=False)
    new = MultiDomainResNet26(num_domains=2, log_overhead=False)
    with pytest.raises(ValueError, match="arch='rebuffi'"):
        new.load_state_dict(old.state_dict())
    path = str(tmp_path / 'old.pth')
    torch.save(dict(state_dict=old.state_dict()), path)
    with pytest.raises(ValueError, match="arch='rebuffi'"):  # mmengine path
        load_checkpoint(new, path, strict=False)
    with pytest.raises(ValueError, match="arch='official'"):
        old.load_state_dict(new.state_dict())
    # each loads into its own arch
    MultiDomainResNet26(arch='rebuffi', num_domains=2,
                        log_overhead=False).load_state_dict(old.state_dict())


def test_a_key_outside_the_official_layout_is_named():
    state = official_state_dict(1, seed=4)
    state['blocks.0.0.SeparableConv2d1.pointwise.bias'] = torch.zeros(128)
    with pytest.raises(ValueError, match='SeparableConv2d1.pointwise.bias'):
        convert_official_state_dict(state)


def test_data_parallel_prefix_is_removed():
    state = official_state_dict(1, seed=5)
    wrapped = {f'module.{k}': v for k, v in state.items()}
    assert convert_official_state_dict(wrapped)[0].keys() == \
        convert_official_state_dict(state)[0].keys()


def test_unknown_arch_is_refused():
    with pytest.raises(ValueError, match='arch='):
        MultiDomainResNet26(arch='resnet26')
