"""Initialise a swapped model exactly as the stock model would be.

The swap runs right after the model is built, so the model's
``init_weights()`` (called later by the Runner, before ``load_from``) meets
variants where its ``init_cfg`` expects plain convs: ``Kaiming`` /
``Xavier`` / ``Normal`` initialisers with ``layer='Conv2d'``, ``override``
by name, ``ConvModule``'s own ``kaiming_init``, ``Pretrained`` checkpoints
in the plain layout. :class:`StockInitWeights` takes the place of the
swapped module's ``init_weights``: it puts plain convs back where the
variants are (each the fold of its variant, or the kept original for a
variant that does not fold back into it), runs the module's own ``init_weights`` on that
stock tree, and copies ``from_conv`` of each initialised plain conv into
its variant, in place. The variants' parameters stay the same objects (an
optimizer or DDP built on them stays valid) and the random numbers drawn
are those the stock model draws, so with the same seed the swapped model
computes exactly what the stock model computes after ``init_weights``.
"""
import itertools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from mmconvplug.convs.base import is_foldable
from mmconvplug.fold.fold_model import preserved_rng_state


@dataclass
class SwapRecord:
    """How one variant was made, so it can be made again after init.

    Args:
        name (str): Qualified name of the variant in the swapped module.
        variant_cls (type): The variant's class.
        variant_args (dict): The ``from_conv`` keyword arguments.
        plain (nn.Conv2d, optional): The replaced conv, kept only when the
            variant does not fold back into it.
    """

    name: str
    variant_cls: type
    variant_args: Dict[str, Any] = field(default_factory=dict)
    plain: Optional[nn.Conv2d] = None


def module_slots(root: nn.Module) -> Dict[int, List[Tuple[nn.Module, str]]]:
    """``{id(module): [(parent, attribute), ...]}`` over the whole tree.

    A module registered under several parents (shared) has several slots.
    """
    slots: Dict[int, List[Tuple[nn.Module, str]]] = {}
    for parent in root.modules():
        for attribute, child in parent._modules.items():
            if child is not None:
                slots.setdefault(id(child), []).append((parent, attribute))
    return slots


def replace_module(slots: Dict[int, List[Tuple[nn.Module, str]]],
                   old: nn.Module, new: nn.Module) -> None:
    """Put ``new`` in every slot that holds ``old``."""
    places = slots.pop(id(old))
    for parent, attribute in places:
        setattr(parent, attribute, new)
    slots[id(new)] = places


def _device_of(module: nn.Module) -> torch.device:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device('cpu')


def _register_init_info(module: nn.Module, plains: List[nn.Module]) -> None:
    """Make the temporary plain convs known to mmengine's init bookkeeping.

    Inside a parent's ``init_weights`` every module shares the parent's
    ``_params_init_info`` (keyed by parameter); mmengine asserts that no
    parameter appears that is not in it.
    """
    info = getattr(module, '_params_init_info', None)
    if info is None:
        return
    for plain in plains:
        plain._params_init_info = info
        for param in plain.parameters():
            info[param]['init_info'] = (
                'The value is the same before and after calling '
                f'`init_weights` of {type(module).__name__} ')
            info[param]['tmp_mean_value'] = param.data.mean().cpu()


class StockInitWeights:
    """The ``init_weights`` of a module whose convs were swapped.

    Args:
        module (nn.Module): The swapped module.
        records (list[SwapRecord]): One per variant put in by the swap.
        reports (list): The swap reports of this module (kept for
            :func:`mmconvplug.swap.conv_swap_reports`).
    """

    def __init__(self, module: nn.Module, records: List[SwapRecord],
                 reports: list) -> None:
        self.module = module
        self.records = records
        self.reports = reports
        self.done = False

    def _stock_init(self) -> None:
        """The module class's own ``init_weights`` (none for a plain
        ``nn.Module``: its convs keep their construction init)."""
        init_weights = getattr(type(self.module), 'init_weights', None)
        if init_weights is not None:
            init_weights(self.module)

    def __call__(self) -> None:
        module = self.module
        if self.done or not self.records:
            return self._stock_init()
        slots = module_slots(module)
        variants, plains = [], []
        with preserved_rng_state():  # folds build convs: draw nothing
            for record in self.records:
                variant = module.get_submodule(record.name)
                if record.plain is not None:
                    plain = record.plain.to(_device_of(variant))
                else:
                    plain = variant.fold()
                plain.train(variant.training)
                replace_module(slots, variant, plain)
                variants.append(variant)
                plains.append(plain)
        try:
            _register_init_info(module, plains)
            self._stock_init()
        finally:
            for variant, plain in zip(variants, plains):
                replace_module(slots, plain, variant)
        with preserved_rng_state():  # CondConv's jitter: draw nothing
            for record, variant, plain in zip(self.records, variants, plains):
                fresh = record.variant_cls.from_conv(plain,
                                                     **record.variant_args)
                variant.load_state_dict(fresh.state_dict())
                record.plain = None  # initialised: nothing to keep
        self.done = True


def add_records(module: nn.Module, records: List[SwapRecord],
                report: Any) -> StockInitWeights:
    """Install (or extend) the :class:`StockInitWeights` of ``module``."""
    current = module.__dict__.get('init_weights')
    if not isinstance(current, StockInitWeights):
        current = StockInitWeights(module, [], [])
        # An instance attribute: only this module's init changes.
        module.__dict__['init_weights'] = current
    current.records.extend(records)
    current.reports.append(report)
    return current


def needs_kept_plain(variant: nn.Module) -> bool:
    """True when the plain conv must be kept to re-initialise ``variant``:
    it does not fold, or its fold is not the conv it was built from (a
    variant saying ``folds_to_source=False``, e.g. a RefConv with the
    official random map, whose fold is the refocused kernel, not the
    basis)."""
    return not is_foldable(variant) or not getattr(variant,
                                                   'folds_to_source', True)
