"""The ``conv_swap`` config block: which variant, where, and on which convs.

A block (a dict in the config, next to ``type`` of the model it applies to)::

    model = dict(
        conv_swap=dict(
            type='DOConv',                  # the conv variant
            include=['backbone', 'neck', 'rpn_head', 'roi_head'],
            exclude=['backbone.conv1'],     # optional
            min_kernel_size=2,              # optional filters
            kernel_size=None, groups=None, stride=None,
            D_mul=None))                    # anything else: from_conv args

is turned into a :class:`ConvSwapSpec` by :func:`parse_conv_swap`, which
checks every key and value and says how to fix a wrong one.

* ``type``: a registered conv variant with an exact ``from_conv``
  (:func:`swappable_variants`: DOConv, RefConv, CondConv).
* ``include`` / ``exclude``: module-name patterns (one string or a list;
  see :mod:`mmconvplug.swap.matching`); no ``include``: the whole module.
* ``kernel_size`` / ``stride``: an int (square), an ``(h, w)`` tuple, or a
  list of them; the conv's must be one of them. ``min_kernel_size``: the
  larger kernel side must be at least this (2: every kernel larger than
  1x1). ``groups``: an int or a list of ints.
* any other key is a keyword argument of the variant's ``from_conv``
  (``D_mul`` for DOConv, ``map_size`` / ``map_groups`` /
  ``zero_init_refocus`` for RefConv,
  ``num_experts`` / ``expert_jitter`` / ``strategy`` for CondConv).

Only plain convs are swapped (``nn.Conv2d`` and mmcv's ``Conv2d``
wrapper); other conv layers the block reaches (transposed convs, convs
that already are variants, ``nn.Conv2d`` subclasses with their own
forward, convs ``from_conv`` refuses) are reported as skipped, with why.
"""
import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from torch import nn
from torch.nn.modules.utils import _pair

from mmconvplug.convs.base import conv_variants

#: Keys of a ``conv_swap`` block that are not ``from_conv`` arguments.
SELECTION_KEYS = ('type', 'include', 'exclude', 'kernel_size',
                  'min_kernel_size', 'groups', 'stride')


class ConvSwapConfigError(ValueError):
    """A ``conv_swap`` block is malformed, or its patterns match nothing."""


def swappable_variants() -> Dict[str, type]:
    """``{name: class}`` of the registered variants that implement
    ``from_conv`` (those a plain conv can be swapped for, exactly)."""
    return {
        name: cls
        for name, cls in conv_variants().items()
        if not getattr(cls, 'from_conv_unsupported_reason', '')
    }


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _patterns(value: Any, key: str) -> Tuple[str, ...]:
    patterns = _as_list(value)
    bad = [p for p in patterns if not isinstance(p, str) or not p]
    if bad:
        raise ConvSwapConfigError(
            f'conv_swap.{key} must be a module-name pattern or a list of '
            f'them (non-empty strings, e.g. "backbone.layer[3-4]"), got '
            f'{bad!r}.')
    return tuple(patterns)


def _pairs(value: Any, key: str) -> Optional[Tuple[Tuple[int, int], ...]]:
    """``3`` / ``(1, 3)`` / ``[1, (3, 3)]`` -> a tuple of (h, w) pairs.

    A tuple is one ``(h, w)`` pair; a list holds several sizes.
    """
    if value is None:
        return None
    items = list(value) if isinstance(value, list) else [value]
    if not items:
        raise ConvSwapConfigError(
            f'conv_swap.{key} is an empty list: give sizes, or None for any.')
    pairs = []
    for item in items:
        pair = _pair(item) if isinstance(item, (int, tuple)) else (item, )
        if not (len(pair) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0
                for v in pair)):
            raise ConvSwapConfigError(
                f'conv_swap.{key} must be a positive int, an (h, w) tuple or '
                f'a list of them, got {value!r}.')
        pairs.append(tuple(pair))
    return tuple(pairs)


def _positive_ints(value: Any, key: str) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    values = _as_list(value)
    if not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in values):
        raise ConvSwapConfigError(
            f'conv_swap.{key} must be a positive int or a list of them, got '
            f'{value!r}.')
    return tuple(values)


@dataclass(frozen=True)
class ConvSwapSpec:
    """One parsed ``conv_swap`` block.

    Args:
        variant (str): Registered name of the conv variant.
        variant_cls (type): Its class (has ``from_conv``).
        variant_args (dict): Keyword arguments of ``from_conv``.
        include (tuple[str]): Module-name patterns (``fnmatch`` wildcards);
            empty: the whole module the block belongs to.
        exclude (tuple[str]): Patterns whose convs are left plain.
        kernel_size (tuple[tuple[int, int]], optional): Kernel sizes to
            swap; None: any.
        min_kernel_size (int, optional): Swap only kernels whose larger
            side is at least this (2: every kernel larger than 1x1).
        groups (tuple[int], optional): ``groups`` values to swap; None: any.
        stride (tuple[tuple[int, int]], optional): Strides to swap; None:
            any.
    """

    variant: str
    variant_cls: type
    variant_args: Dict[str, Any] = field(default_factory=dict)
    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    kernel_size: Optional[Tuple[Tuple[int, int], ...]] = None
    min_kernel_size: Optional[int] = None
    groups: Optional[Tuple[int, ...]] = None
    stride: Optional[Tuple[Tuple[int, int], ...]] = None

    def filter_reason(self, conv: nn.Conv2d) -> Optional[str]:
        """Why the kernel / groups / stride filters leave ``conv`` plain
        (None when they keep it)."""
        kernel = tuple(conv.kernel_size)
        if (self.min_kernel_size is not None
                and max(kernel) < self.min_kernel_size):
            return (f'kernel {kernel[0]}x{kernel[1]} is smaller than '
                    f'min_kernel_size={self.min_kernel_size}')
        if self.kernel_size is not None and kernel not in self.kernel_size:
            return (f'kernel {kernel[0]}x{kernel[1]} is not in kernel_size='
                    f'{list(self.kernel_size)}')
        if self.groups is not None and conv.groups not in self.groups:
            return f'groups={conv.groups} is not in {list(self.groups)}'
        if (self.stride is not None
                and tuple(conv.stride) not in self.stride):
            return (f'stride={tuple(conv.stride)} is not in '
                    f'{list(self.stride)}')
        return None

    def describe(self) -> str:
        """One line: ``DOConv on backbone, neck (kernels >= 2)``."""
        where = ', '.join(self.include) if self.include else 'every module'
        parts = [f'{self.variant} on {where}']
        if self.exclude:
            parts.append(f'except {", ".join(self.exclude)}')
        filters = []
        if self.min_kernel_size is not None:
            filters.append(f'kernel >= {self.min_kernel_size}')
        if self.kernel_size is not None:
            filters.append(f'kernel in {list(self.kernel_size)}')
        if self.groups is not None:
            filters.append(f'groups in {list(self.groups)}')
        if self.stride is not None:
            filters.append(f'stride in {list(self.stride)}')
        if filters:
            parts.append(f'({", ".join(filters)})')
        if self.variant_args:
            parts.append(f'with {self.variant_args}')
        return ' '.join(parts)


def _from_conv_arguments(cls: type) -> List[str]:
    params = list(inspect.signature(cls.from_conv).parameters.values())[1:]
    return [p.name for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def parse_conv_swap(block: Any) -> ConvSwapSpec:
    """Check one ``conv_swap`` block and return its :class:`ConvSwapSpec`.

    Args:
        block (dict): The config block (see the module docstring).

    Returns:
        ConvSwapSpec: The parsed block.

    Raises:
        ConvSwapConfigError: not a dict, no or an unknown ``type``, a type
            that has no exact ``from_conv``, an argument ``from_conv`` does
            not take, or a malformed pattern / filter value.
    """
    if not isinstance(block, dict):
        raise ConvSwapConfigError(
            f'conv_swap must be a dict (or a list of dicts) such as '
            f"dict(type='DOConv', include=['backbone']), got {block!r}.")
    block = dict(block)
    variants = swappable_variants()
    variant = block.pop('type', None)
    if variant is None:
        raise ConvSwapConfigError(
            'conv_swap needs type=<conv variant>, one of '
            f'{sorted(variants)}.')
    if isinstance(variant, type):
        variant = variant.__name__
    if not isinstance(variant, str) or variant.split('.')[-1] not in (
            variants):
        name = variant if isinstance(variant, str) else repr(variant)
        reason = getattr(conv_variants().get(name), 'from_conv_unsupported_'
                         'reason', '')
        why = (f' {name} has no exact from_conv: {reason}' if reason else '')
        raise ConvSwapConfigError(
            f'conv_swap type {name!r} is not a conv variant a plain conv can '
            f'be swapped for.{why} Choose one of {sorted(variants)} (and '
            "add custom_imports=dict(imports=['mmconvplug']) to the config "
            'if this list is empty).')
    variant = variant.split('.')[-1]
    variant_cls = variants[variant]
    selection = {key: block.pop(key, None) for key in SELECTION_KEYS[1:]}
    accepted = _from_conv_arguments(variant_cls)
    unknown = sorted(set(block) - set(accepted))
    if unknown:
        raise ConvSwapConfigError(
            f'conv_swap: {unknown} is neither a selection key '
            f'{list(SELECTION_KEYS)} nor an argument of '
            f'{variant}.from_conv {accepted}.')
    min_kernel = selection['min_kernel_size']
    if min_kernel is not None and (not isinstance(min_kernel, int)
                                   or isinstance(min_kernel, bool)
                                   or min_kernel < 1):
        raise ConvSwapConfigError(
            'conv_swap.min_kernel_size must be a positive int (2: every '
            f'kernel larger than 1x1), got {min_kernel!r}.')
    return ConvSwapSpec(
        variant=variant,
        variant_cls=variant_cls,
        variant_args=block,
        include=_patterns(selection['include'], 'include'),
        exclude=_patterns(selection['exclude'], 'exclude'),
        kernel_size=_pairs(selection['kernel_size'], 'kernel_size'),
        min_kernel_size=min_kernel,
        groups=_positive_ints(selection['groups'], 'groups'),
        stride=_pairs(selection['stride'], 'stride'))


def parse_conv_swaps(blocks: Any) -> List[ConvSwapSpec]:
    """A ``conv_swap`` value (one block or a list of blocks) -> specs, in
    the order they are applied."""
    if isinstance(blocks, (list, tuple)):
        if not blocks:
            raise ConvSwapConfigError(
                'conv_swap is an empty list: give at least one block, or '
                'remove the key (None also means no swap).')
        return [parse_conv_swap(block) for block in blocks]
    return [parse_conv_swap(blocks)]
