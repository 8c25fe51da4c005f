"""The one query everything else uses: which classes and modules are conv
variants.

:func:`conv_variants` (classes, by registered name) and
:func:`is_conv_variant` / :func:`is_foldable` (a module) answer it for the
fold engine, the checkpoint guard, the converter, the benchmarks, the demo
and ``mmconvplug info``; :func:`build_reference_layer` builds a variant at
the contract's reference geometry. All are importable from ``.base``.
"""
from typing import Dict

import torch
from torch import nn

from .mixins import (
    ConvVariantContractError,
    declares_conv_variant_contract,
    raise_if_broken,
)

#: The geometry every variant must build at with its defaults:
#: ``cls(*REFERENCE_ARGS, **REFERENCE_KWARGS)``.
REFERENCE_ARGS = (8, 8, 3)
REFERENCE_KWARGS = dict(stride=1, padding=1)


# ------------------------------------------------------------ the query
def conv_variants() -> Dict[str, type]:
    """``{registered name: class}`` of every conv variant in root MODELS.

    Raises:
        ConvVariantContractError: a registered class declares the contract
            (see the module docstring) but does not keep it.
    """
    from mmengine.registry import MODELS
    variants = {}
    for name, cls in sorted(MODELS.module_dict.items()):
        if declares_conv_variant_contract(cls):
            raise_if_broken(cls)
            variants[name] = cls
    return variants


def is_conv_variant(module: nn.Module) -> bool:
    """True for an instance of a class that declares the contract."""
    return declares_conv_variant_contract(type(module))


def is_foldable(module: nn.Module) -> bool:
    """True for a conv variant the fold engine can replace by its fold."""
    return (is_conv_variant(module)
            and bool(getattr(module, 'foldable', False)))


def build_reference_layer(cls: type) -> nn.Module:
    """``cls`` at the reference geometry, with the RNG state preserved.

    Raises:
        ConvVariantContractError: ``cls`` does not build there.
    """
    with torch.random.fork_rng(devices=[]):
        try:
            return cls(*REFERENCE_ARGS, **REFERENCE_KWARGS)
        except Exception as exc:
            raise ConvVariantContractError(
                f'{cls.__name__} must build as {cls.__name__}'
                f'{REFERENCE_ARGS[:3]} with {REFERENCE_KWARGS} and its '
                f'defaults (the conv-variant contract), but raised '
                f'{type(exc).__name__}: {exc}') from exc
