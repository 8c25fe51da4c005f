"""``fold_model``: replace every foldable conv variant in a model by its fold.

Walks the module tree (backbones, necks, heads, inside ``ConvModule``,
``nn.Sequential`` and ``nn.ModuleList`` alike), asks each conv variant
(:func:`~mmconvplug.convs.base.is_conv_variant`, the contract's query) for
:meth:`fold`, and puts
the result where the variant was. Variants that cannot fold stay and are
listed, with their reason, in the :class:`FoldReport`.

The original model is deep-copied unless ``inplace=True``. Folding builds
new ``nn.Conv2d`` modules, whose constructors draw random initial weights;
we restore the RNG state afterwards so folding (e.g. before each validation
during training) never changes what a seeded run does next.
"""
import contextlib
import copy
from typing import Iterator, Tuple, Union

import torch
from torch import nn

from mmconvplug.convs.base import (
    freeze_like,
    full_precision,
    is_conv_variant,
    is_foldable,
)

from .bn_fusion import fuse_batch_norms
from .report import FoldedLayer, FoldReport, KeptLayer


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore the CPU (and initialised CUDA) RNG state on exit."""
    devices = (list(range(torch.cuda.device_count()))
               if torch.cuda.is_available() and torch.cuda.is_initialized()
               else [])
    with torch.random.fork_rng(devices=devices):
        yield


def _fold_children(parent: nn.Module, prefix: str, report: FoldReport,
                   plain_conv_only: bool) -> None:
    for child_name, child in list(parent.named_children()):
        name = f'{prefix}{child_name}'
        if is_foldable(child):
            folded = freeze_like(child.fold(), child)
            if plain_conv_only and type(folded) is not nn.Conv2d:
                report.kept.append(
                    KeptLayer(
                        name, type(child).__name__,
                        f'fold() gives a {type(folded).__name__}, not a plain '
                        'nn.Conv2d; kept as trained so the checkpoint loads '
                        'into a config that still builds this variant'))
                continue
            setattr(parent, child_name, folded)
            report.folded.append(
                FoldedLayer(name,
                            type(child).__name__,
                            type(folded).__name__))
            continue
        if is_conv_variant(child):
            reason = getattr(child, 'fold_unsupported_reason', '') or (
                'the layer declares foldable=False')
            report.kept.append(KeptLayer(name, type(child).__name__, reason))
        # Sub-layers of a kept variant may still fold on their own.
        _fold_children(child, f'{name}.', report, plain_conv_only)


def fold_model(model: nn.Module,
               inplace: bool = False,
               fuse_bn: bool = False,
               return_report: bool = False,
               plain_conv_only: bool = False
               ) -> Union[nn.Module, Tuple[nn.Module, FoldReport]]:
    """Return ``model`` with every foldable conv variant folded.

    Args:
        model: any ``nn.Module`` (an mmdet detector, an mmseg segmentor, a
            backbone...). Unwrap DDP / mmengine wrappers first.
        inplace: fold ``model`` itself instead of a deep copy.
        fuse_bn: also fold each BatchNorm that directly follows a plain conv
            into it (see :mod:`mmconvplug.fold.bn_fusion` for the rules).
            The result is then only valid in eval mode.
        return_report: return ``(model, FoldReport)`` instead of the model.
        plain_conv_only: fold a layer only when its ``fold()`` gives a plain
            ``nn.Conv2d``; others (e.g. a DWSConv deploy module) stay and are
            reported. ``tools/fold.py`` uses this so the checkpoint it writes
            loads into a config that builds either plain convs or the
            variants as trained.

    Under autocast, folding runs with autocast off: the folded kernels are
    composed in the parameters' own dtype.

    Trainability is kept: a folded (or BN-fused) tensor requires grad when
    a tensor it is computed from did, so a frozen variant (``frozen_stages``)
    folds to a frozen conv, and fine-tuning the folded model trains what
    the variant model trained (see
    :meth:`~mmconvplug.convs.base.FoldableConvMixin.folded_requires_grad`).

    Returns:
        The folded model, or ``(model, report)`` with ``return_report=True``.
        A model with nothing to fold comes back unchanged, with a report
        saying so.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f'fold_model: model must be a torch.nn.Module, got '
            f'{type(model).__name__}. Pass the model itself (for a Runner: '
            'runner.model, unwrapped with .module under DDP).')
    report = FoldReport()
    # Folds run in the parameters' dtype even when called under autocast.
    with preserved_rng_state(), full_precision():
        target = model if inplace else copy.deepcopy(model)
        if is_foldable(target):  # the model is a single conv variant
            holder = nn.Sequential(target)
            _fold_children(holder, '', report, plain_conv_only)
            target = holder[0]
        else:
            _fold_children(target, '', report, plain_conv_only)
        if fuse_bn:
            report.fused_norms.extend(fuse_batch_norms(target))
    if return_report:
        return target, report
    return target
