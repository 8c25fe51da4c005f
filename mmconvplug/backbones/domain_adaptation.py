"""Adapting a multi-domain model to one more domain: what to train, what
it costs.

Guo et al. (AAAI 2019) share the pointwise convs across domains and keep
the depthwise convs and norms per domain. A new domain is learnt by training
only its own depthwise kernels and norms (and its task head) while every
shared parameter stays as the first domain trained it. These helpers find a
domain's parameters in any model built from multi-domain layers
(``DWSConv``, ``DomainBN``), freeze the rest, and report the cost of one
more domain.
"""
from typing import Dict, List

from torch import nn

from ..convs.domain import (
    check_domain_index,
    count_domain_parameters,
    multi_domain_layers,
)


def domain_parameters(model: nn.Module, domain: int) -> List[nn.Parameter]:
    """The parameters that belong to ``domain`` alone.

    A multi-domain layer keeps its per-domain parts in ``nn.ModuleList``
    children with one entry per domain (``DWSConv.depthwise``/``norms``,
    ``DomainBN.norms``); entry ``domain`` of each is returned.

    Raises:
        ValueError: the model has no multi-domain layer.
        IndexError: ``domain`` is out of range for some layer.
    """
    layers = multi_domain_layers(model)
    if not layers:
        raise ValueError(
            f'{type(model).__name__} has no multi-domain layer; build it '
            'with DWSConv convs / DomainBN norms (e.g. the '
            'MultiDomainResNet26 backbone) to adapt it per domain.')
    for layer in layers:
        check_domain_index(domain, layer.num_domains, type(layer).__name__)
    return [param for layer in layers
            for _, param in layer.named_domain_parameters(domain)]


def freeze_all_but_domain(module: nn.Module, domain: int) -> int:
    """Set ``requires_grad=False`` on every parameter of ``module`` except
    ``domain``'s own; return how many parameters (elements) it trains.

    Switching to another domain later freezes ``domain``'s parameters and
    leaves everything else frozen: the adaptation trains one domain only.
    While ``domain`` is not the active one its parameters stay frozen too
    (the forward does not use them), and become trainable when it is made
    active (:func:`~mmconvplug.convs.domain.set_active_domain`).
    """
    keep = {id(p) for p in domain_parameters(module, domain)}
    for param in module.parameters():
        param.requires_grad = id(param) in keep
    for layer in multi_domain_layers(module):
        layer.forget_domain_freezes()
        layer.sync_domain_trainability()
    return sum(p.numel() for p in module.parameters() if id(p) in keep)


def domain_overhead(model: nn.Module) -> Dict[str, float]:
    """What one more domain costs, in parameters.

    Returns ``total`` (all parameters, every domain included),
    ``per_domain`` (what one more domain adds), ``shared`` (what all
    domains share: ``total`` less every layer's ``num_domains *
    params_per_domain()``, which is ``total - num_domains * per_domain``
    when every layer has all the domains), ``num_domains`` and
    ``overhead_percent`` (``per_domain / shared * 100``: the paper's
    "parameters added per new domain, relative to the shared network").
    """
    layers = multi_domain_layers(model)
    num_domains = max(layer.num_domains for layer in layers) if layers else 0
    per_domain = count_domain_parameters(model)
    total = sum(p.numel() for p in model.parameters())
    shared = total - sum(layer.num_domains * layer.params_per_domain()
                         for layer in layers)
    return dict(
        total=total,
        per_domain=per_domain,
        shared=shared,
        num_domains=num_domains,
        overhead_percent=100.0 * per_domain / max(shared, 1))


def format_domain_overhead(model: nn.Module) -> str:
    """One line for logs: the per-domain parameter overhead of ``model``."""
    o = domain_overhead(model)
    return (f'multi-domain model: {o["num_domains"]} domains, '
            f'{o["shared"] / 1e6:.3f}M shared parameters, '
            f'+{o["per_domain"] / 1e6:.4f}M per domain '
            f'({o["overhead_percent"]:.2f}% of the shared network)')
