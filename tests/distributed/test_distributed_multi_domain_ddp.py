"""A multi-domain model trains one domain under 2-process DDP (gloo, CPU)
with DistributedDataParallel's default flags.

``MultiDomainResNet26(num_domains=2, active_domain=0)`` plus a 1x1 head,
wrapped in ``DistributedDataParallel`` as a new user would (no
``find_unused_parameters``): 3 SGD steps (momentum, weight decay) on domain
0, then the adaptation step of the paper: domain 1 active,
``freeze_all_but_domain(backbone, 1)`` (``train_domain_only``), a new wrapper
(DDP records the trainable set when it wraps), 2 more steps with the same
optimizer. Each rank sees its own data.

Before the fix the second step of phase 1 fails ("Expected to have finished
reduction in the prior iteration ... parameters that were not used in
producing loss"): domain 1's depthwise kernels and BNs required grad and took
no part in the loss.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmconvplug.backbones import (
    MultiDomainResNet26,
    domain_parameters,
    freeze_all_but_domain,
)
from mmconvplug.convs import DWSConv, set_active_domain

WORLD_SIZE = 2
PHASE1_STEPS = 3
PHASE2_STEPS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class _Segmenter(nn.Module):
    """The issue's model: the backbone and a 1x1 classifier on its last
    stage."""

    def __init__(self, gate: bool) -> None:
        super().__init__()
        self.backbone = MultiDomainResNet26(
            num_domains=2, active_domain=0, gate=gate, stem_channels=8,
            stage_channels=(8, 16, 16), num_blocks=1, log_overhead=False)
        self.head = nn.Conv2d(16, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])


def _named(model: nn.Module, params) -> dict:
    ids = {id(p) for p in params}
    return {name: p.detach().clone()
            for name, p in model.named_parameters() if id(p) in ids}


def _steps(ddp, optimizer, rank: int, first: int, count: int) -> None:
    for step in range(first, first + count):
        generator = torch.Generator().manual_seed(1000 * step + rank)
        images = torch.randn(2, 3, 16, 16, generator=generator)
        target = torch.randint(0, 3, (2, 2, 2), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(ddp(images), target)
        loss.backward()
        optimizer.step()


def _worker(rank: int, port: int, out_dir: str, gate: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=WORLD_SIZE)
    try:
        torch.manual_seed(rank)  # DDP must broadcast rank 0's weights
        model = _Segmenter(gate)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1,
                                    momentum=0.9, weight_decay=1e-3)
        results = dict(init=_named(model, model.parameters()))

        _steps(DistributedDataParallel(model), optimizer, rank, 0,
               PHASE1_STEPS)
        results['phase1'] = _named(model, model.parameters())
        if not gate:
            set_active_domain(model, 1)
            freeze_all_but_domain(model.backbone, 1)
            results['trainable'] = sorted(
                name for name, p in model.named_parameters()
                if p.requires_grad)
            _steps(DistributedDataParallel(model), optimizer, rank,
                   PHASE1_STEPS, PHASE2_STEPS)
            results['phase2'] = _named(model, model.parameters())
        results['domain0'] = sorted(
            _named(model, domain_parameters(model, 0)))
        results['domain1'] = sorted(
            _named(model, domain_parameters(model, 1)))
        results['dws_domain1'] = sorted(_named(model, [
            p for m in model.modules() if isinstance(m, DWSConv)
            for _, p in m.named_domain_parameters(1)]))
        torch.save(results, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


def _run(tmp_path, gate: bool):
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path), gate),
                       nprocs=WORLD_SIZE, join=True, start_method='fork')
    return [torch.load(str(tmp_path / f'rank{r}.pt'))
            for r in range(WORLD_SIZE)]


def _changed(before: dict, after: dict, names) -> set:
    return {n for n in names if not torch.equal(before[n], after[n])}


def test_train_domain0_then_adapt_domain1_with_default_ddp(tmp_path):
    ranks = _run(tmp_path, gate=False)
    first = ranks[0]
    domain0, domain1 = first['domain0'], first['domain1']
    shared = set(first['init']) - set(domain0) - set(domain1)
    assert domain0 and domain1 and shared

    # Phase 1 trained domain 0 and the shared parameters, not domain 1.
    assert _changed(first['init'], first['phase1'], domain0) == set(domain0)
    assert 'head.weight' in _changed(first['init'], first['phase1'], shared)
    assert not _changed(first['init'], first['phase1'], domain1)

    # Phase 2 (train_domain_only on domain 1): domain 1 and the task head
    # train; domain 0 and the shared backbone are bit-identical.
    head = {'head.weight', 'head.bias'}
    assert first['trainable'] == sorted(set(domain1) | head)
    assert _changed(first['phase1'], first['phase2'],
                    first['phase2']) == set(domain1) | head
    assert not _changed(first['phase1'], first['phase2'],
                        set(domain0) | (shared - head))

    # Both ranks hold the same model after each phase (they were built
    # from different seeds: DDP broadcast rank 0's weights when wrapping).
    assert _changed(ranks[0]['init'], ranks[1]['init'], ranks[0]['init'])
    for phase in ('phase1', 'phase2'):
        assert not _changed(ranks[0][phase], ranks[1][phase],
                            ranks[0][phase])


def test_soft_sharing_gate_trains_every_domain_under_ddp(tmp_path):
    """With the gate every example mixes all domains' depthwise convs: those
    legitimately get gradients and train; only DomainBN's other-domain BNs,
    which the forward does not use, are frozen."""
    ranks = _run(tmp_path, gate=True)
    first = ranks[0]
    changed = _changed(first['init'], first['phase1'], first['domain1'])
    dws1 = set(first['dws_domain1'])  # depthwise kernels + their BNs
    domain_bn1 = set(first['domain1']) - dws1
    assert any('.depthwise.1.' in n for n in dws1) and domain_bn1
    assert changed == dws1
    assert not _changed(ranks[0]['phase1'], ranks[1]['phase1'],
                        ranks[0]['phase1'])


def test_dwsconv_alone_freezes_the_domains_it_leaves_out():
    layer = DWSConv(4, 8, 3, padding=1, num_domains=3)
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    assert trainable == {'depthwise.0.weight', 'norms.0.weight',
                         'norms.0.bias', 'pointwise.weight',
                         'pointwise.bias'}
    layer.active_domain = 2
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    assert {'depthwise.2.weight', 'norms.2.weight'} <= trainable
    assert not {'depthwise.0.weight', 'norms.0.weight'} & trainable


@pytest.mark.parametrize('gate', [False, True])
def test_single_process_backward_reaches_every_trainable_parameter(gate):
    """What DDP needs: after one backward every parameter that requires
    grad has a gradient, for both active domains."""
    model = _Segmenter(gate)
    for domain in (0, 1):
        set_active_domain(model, domain)
        model.zero_grad(set_to_none=True)
        model(torch.randn(2, 3, 16, 16)).sum().backward()
        missing = [n for n, p in model.named_parameters()
                   if p.requires_grad and p.grad is None]
        assert not missing


def test_frozen_stages_stay_frozen_when_the_domain_switches():
    model = MultiDomainResNet26(num_domains=2, frozen_stages=1,
                                stem_channels=8, stage_channels=(8, 8, 8),
                                num_blocks=1, log_overhead=False)
    for domain in (1, 0, 1):
        set_active_domain(model, domain)
        model.train()
        frozen = [*model.stem.parameters(), *model.stages[0].parameters()]
        assert not any(p.requires_grad for p in frozen)
        trainable = {id(p) for p in model.stages[1].parameters()
                     if p.requires_grad}
        own = {id(p) for p in domain_parameters(model.stages[1], domain)}
        other = {id(p) for p in domain_parameters(model.stages[1],
                                                  1 - domain)}
        assert own <= trainable and not other & trainable


def test_train_domain_only_follows_the_active_domain():
    model = MultiDomainResNet26(num_domains=2, active_domain=1,
                                train_domain_only=True,
                                stem_channels=8, stage_channels=(8, 8, 8),
                                num_blocks=1, log_overhead=False)
    set_active_domain(model, 0)
    model.train()
    assert model.active_domain == 0
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in domain_parameters(model, 0)}


def test_domain_bn_from_norm_cfg_is_resynced():
    """mmcv's build_norm_layer sets requires_grad on every parameter after
    building; sync_domain_trainability (or set_active_domain) restores the
    active-domain rule."""
    from mmcv.cnn import build_norm_layer

    from mmconvplug.convs.domain import sync_domain_trainability
    norm = build_norm_layer(dict(type='DomainBN', num_domains=2), 4)[1]
    assert all(p.requires_grad for p in norm.parameters())
    sync_domain_trainability(norm)
    assert [p.requires_grad for p in norm.parameters()] == [
        True, True, False, False]
    norm.active_domain = 1
    assert [p.requires_grad for p in norm.parameters()] == [
        False, False, True, True]
