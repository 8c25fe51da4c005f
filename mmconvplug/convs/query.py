"""The contract's check and the one query everything else uses.

:func:`conv_variants` (classes, by registered name) and
:func:`is_conv_variant` / :func:`is_foldable` (a module) answer "which layers
are conv variants" for the fold engine, the checkpoint guard, the converter,
the benchmarks, the demo and ``mmconvplug info``;
:func:`check_conv_variant_class` says what a class lacks of the contract
(:mod:`mmconvplug.convs.base`). Both names stay importable from ``.base``.
"""
import inspect
from typing import Dict, List

import torch
from torch import nn

from .attributes import CONV_ARGUMENTS
from .base import ConvVariantContractError, ConvVariantMixin

#: The geometry every variant must build at with its defaults:
#: ``cls(*REFERENCE_ARGS, **REFERENCE_KWARGS)``.
REFERENCE_ARGS = (8, 8, 3)
REFERENCE_KWARGS = dict(stride=1, padding=1)


# ------------------------------------------------------------ the check
def abstract_methods(cls: type) -> List[str]:
    """Names of the abstract methods ``cls`` leaves unimplemented."""
    return sorted(
        name for name in dir(cls)
        if getattr(getattr(cls, name, None), '__isabstractmethod__', False))


def declares_conv_variant_contract(cls: object) -> bool:
    """True for an ``nn.Module`` class that declares the contract."""
    return (isinstance(cls, type) and issubclass(cls, nn.Module)
            and (issubclass(cls, ConvVariantMixin)
                 or isinstance(getattr(cls, 'foldable', None), bool)))


def check_conv_variant_class(cls: type) -> List[str]:
    """What ``cls`` lacks of the contract (empty when it keeps it)."""
    problems = []
    abstract = abstract_methods(cls)
    if abstract:
        problems.append(f'abstract methods not implemented: {abstract}')
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    names = tuple(p.name for p in params[:len(CONV_ARGUMENTS)])
    if names != CONV_ARGUMENTS:
        problems.append(
            f'__init__ must start with nn.Conv2d\'s arguments '
            f'{CONV_ARGUMENTS}, got {names}')
    else:
        for param in params[3:]:
            if (param.default is param.empty and param.kind not in (
                    param.VAR_POSITIONAL, param.VAR_KEYWORD)):
                problems.append(
                    f'__init__ argument {param.name!r} needs a default')
    foldable = getattr(cls, 'foldable', None)
    if not isinstance(foldable, bool):
        problems.append(
            f'class attribute foldable must be a bool, got {foldable!r}')
    if not callable(getattr(cls, 'fold', None)):
        problems.append('fold() is missing')
    if foldable is False and not getattr(cls, 'fold_unsupported_reason', ''):
        problems.append('foldable=False needs a fold_unsupported_reason')
    if not isinstance(inspect.getattr_static(cls, 'from_conv', None),
                      classmethod):
        problems.append('from_conv must be a classmethod')
    elif (cls.from_conv.__func__ is ConvVariantMixin.from_conv.__func__
          and not getattr(cls, 'from_conv_unsupported_reason', '')):
        problems.append('from_conv() is not implemented: implement it '
                        '(exact from a plain nn.Conv2d) or set '
                        'from_conv_unsupported_reason')
    else:
        extra = list(inspect.signature(cls.from_conv).parameters)[1:]
        own_kwargs = getattr(cls, 'from_conv_kwargs', None)
        if extra and (own_kwargs is None or own_kwargs is
                      ConvVariantMixin.from_conv_kwargs):
            problems.append(
                f'from_conv takes {extra}: implement from_conv_kwargs() '
                'returning the values that rebuild a layer like self')
    if not callable(getattr(cls, 'new_tensor_names', None)):
        problems.append('new_tensor_names() is missing')
    return problems


def raise_if_broken(cls: type) -> None:
    """Raise :class:`ConvVariantContractError` listing what ``cls`` lacks.

    Called when a :class:`ConvVariantMixin` subclass is defined (abstract
    ones excepted) and by :func:`conv_variants`.
    """
    problems = check_conv_variant_class(cls)
    if problems:
        raise ConvVariantContractError(
            f'{cls.__module__}.{cls.__qualname__} declares the mmconvplug '
            f'conv-variant contract but breaks it: ' + '; '.join(problems) +
            '. See mmconvplug/convs/base.py for what a variant provides.')


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
