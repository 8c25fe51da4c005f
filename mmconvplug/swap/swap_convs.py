"""``swap_convs``: replace plain convs of a built model by a conv variant.

Each selected ``nn.Conv2d`` becomes ``Variant.from_conv(conv, **args)``,
which computes exactly what the conv computes, under the same attribute
(every attribute, if the conv is shared), so the state-dict keys of the
model stay those of the plain model (a variant only adds its own new
tensors, e.g. DO-Conv's ``D_delta``): stock pretrained and plain trained
checkpoints load into the swapped model as into the plain one, and the
fold of the swapped model loads, ``strict=True``, into the plain model.

The swap draws no random numbers (the RNG state is restored), and the
module's ``init_weights`` is replaced by
:class:`~mmconvplug.swap.stock_init.StockInitWeights`, so a seeded run
initialises the swapped model exactly as the stock one.
"""
from typing import Any, List, Optional, Set, Tuple

from mmengine.logging import MMLogger, print_log
from torch import nn
from torch.nn.modules.conv import _ConvNd

from mmconvplug.analysis import count_parameters
from mmconvplug.convs.base import is_conv_variant
from mmconvplug.fold.fold_model import preserved_rng_state

from .matching import check_patterns_match, first_match
from .report import ConvSwapReport, SkippedConv, SwappedConv
from .spec import ConvSwapConfigError, ConvSwapSpec, parse_conv_swaps
from .stock_init import (
    SwapRecord,
    add_records,
    module_slots,
    needs_kept_plain,
    replace_module,
)


def plain_conv_types() -> Tuple[type, ...]:
    """The classes that are a plain conv: ``nn.Conv2d`` and mmcv's
    ``Conv2d`` wrapper (registered as ``'Conv'``; on torch >= 1.4 its
    forward is ``nn.Conv2d``'s)."""
    from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
    return nn.Conv2d, MMCVConv2d


def _is_conv_like(module: nn.Module) -> bool:
    return isinstance(module, _ConvNd) or is_conv_variant(module)


def _skip_reason(name: str, module: nn.Module,
                 spec: ConvSwapSpec) -> Optional[str]:
    """Why ``module`` (reached by the block) stays; None: swap it."""
    excluded = first_match(name, spec.exclude)
    if excluded is not None:
        return f'excluded by {excluded!r}'
    if is_conv_variant(module):
        return f'already a conv variant ({type(module).__name__})'
    if type(module) not in plain_conv_types():
        return (f'not a plain nn.Conv2d: {type(module).__name__} computes '
                'something from_conv does not reproduce')
    return spec.filter_reason(module)


def _apply_block(module: nn.Module, spec: ConvSwapSpec, index: int,
                 report: ConvSwapReport) -> List[SwapRecord]:
    owner = type(module).__name__
    named = list(module.named_modules())
    check_patterns_match({'include': spec.include, 'exclude': spec.exclude},
                         [name for name, _ in named if name], owner)
    slots = module_slots(module)
    records, skipped = [], []
    for name, child in named:
        if not name or not _is_conv_like(child):
            continue
        if spec.include and first_match(name, spec.include) is None:
            continue
        reason = _skip_reason(name, child, spec)
        if reason is None:
            try:
                variant = spec.variant_cls.from_conv(child,
                                                     **spec.variant_args)
            except ValueError as error:
                reason = f'{spec.variant}.from_conv refused it: {error}'
        if reason is not None:
            skipped.append(SkippedConv(name, type(child).__name__, reason))
            continue
        replace_module(slots, child, variant)
        report.swapped.append(
            SwappedConv(
                name=name,
                variant=spec.variant,
                in_channels=child.in_channels,
                out_channels=child.out_channels,
                kernel_size=tuple(child.kernel_size),
                stride=tuple(child.stride),
                dilation=tuple(child.dilation),
                groups=child.groups,
                params_before=count_parameters(child),
                params_after=count_parameters(variant)))
        records.append(
            SwapRecord(name, spec.variant_cls, dict(spec.variant_args),
                       child if needs_kept_plain(variant) else None))
    report.skipped.extend(skipped)
    if not records:
        reasons = sorted({s.reason for s in skipped})
        raise ConvSwapConfigError(
            f'conv_swap block {index} ({spec.describe()}) swaps no conv of '
            f'{owner}: ' + (
                f'all {len(skipped)} conv(s) it reaches are skipped ('
                + '; '.join(reasons[:5]) + ('; ...' if len(reasons) > 5
                                             else '') + ').'
                if skipped else 'the modules it reaches hold no conv.') +
            ' Widen include / the filters, or remove the block.')
    return records


def swap_convs(module: nn.Module,
               conv_swap: Any,
               log: bool = True) -> ConvSwapReport:
    """Replace the selected plain convs of ``module`` by a conv variant.

    Call it on a freshly built model, before ``init_weights()``, loading a
    checkpoint, moving it to its device or wrapping it (DDP); the model
    config's ``conv_swap`` key does exactly this at build time.

    Args:
        module (nn.Module): The model (or any module), changed in place.
        conv_swap (dict | list[dict]): One ``conv_swap`` block or a list of
            blocks applied in order (see :mod:`mmconvplug.swap.spec`).
        log (bool): Log the report through mmengine's current logger.
            Defaults to True.

    Returns:
        ConvSwapReport: What was swapped, what was skipped and why, and
        the parameter counts before and after.

    Raises:
        ConvSwapConfigError: a malformed block, a pattern that matches no
            module (the message names the closest module names), or a
            block that swaps no conv.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1),
        ...                     nn.Conv2d(8, 8, 1))
        >>> report = swap_convs(net, dict(type='DOConv',
        ...                               min_kernel_size=2), log=False)
        >>> type(net[0]).__name__, type(net[1]).__name__
        ('DOConv', 'Conv2d')
    """
    specs = parse_conv_swaps(conv_swap)
    report = ConvSwapReport(
        model=type(module).__name__,
        blocks=[spec.describe() for spec in specs],
        params_before=count_parameters(module))
    records: List[SwapRecord] = []
    with preserved_rng_state():  # from_conv builds layers: draw nothing
        for index, spec in enumerate(specs, 1):
            records += _apply_block(module, spec, index, report)
    # A conv one block skips and a later one swaps is reported as swapped;
    # one skipped by several blocks, once (the first reason).
    swapped, seen = set(report.swapped_names), set()
    report.skipped = [
        s for s in report.skipped
        if s.name not in swapped and not (s.name in seen or seen.add(s.name))
    ]
    report.params_after = count_parameters(module)
    add_records(module, records, report)
    if log:
        print_log(report.table(), logger=MMLogger.get_current_instance())
    return report


def conv_swap_reports(model: nn.Module) -> List[ConvSwapReport]:
    """Every swap report of ``model`` and its submodules, outermost first.

    A model config's ``conv_swap`` gives one; a ``conv_swap`` inside a
    sub-config (e.g. ``backbone=dict(..., conv_swap=...)``) gives its own.
    """
    from .stock_init import StockInitWeights
    reports = []
    for submodule in model.modules():
        init = submodule.__dict__.get('init_weights')
        if isinstance(init, StockInitWeights):
            reports += init.reports
    return reports


def swapped_layer_names(model: nn.Module) -> Set[str]:
    """Qualified names of the layers a ``conv_swap`` put into ``model``.

    Such a layer started as exactly the plain conv it replaced, with its
    own new tensors at their exact-equivalence init, so a plain checkpoint
    (stock, plain-trained or folded) loads into it as into the plain model.
    """
    from .stock_init import StockInitWeights
    names = set()
    for prefix, submodule in model.named_modules():
        init = submodule.__dict__.get('init_weights')
        if isinstance(init, StockInitWeights):
            names.update(f'{prefix}.{record.name}' if prefix else record.name
                         for record in init.records)
    return names
