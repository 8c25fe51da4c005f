"""Helpers for the variants' ``from_conv`` and for folding: geometry,
weights and trainability taken over from the plain conv a variant replaces.

Used by every variant's ``from_conv`` (:mod:`mmconvplug.convs.base`, item 4
of the contract) and by the fold engine (:func:`freeze_like`).
"""
from typing import Tuple

import torch
from torch import nn


def plain_conv_geometry(conv: nn.Module,
                        caller: str,
                        zero_padding_only: bool = True) -> dict:
    """Check ``conv`` is a plain ``nn.Conv2d`` a variant can be built from.

    Used by the variants' ``from_conv``; returns the conv's geometry as the
    keyword arguments every variant's constructor takes.

    Raises:
        ValueError: ``conv`` is not an ``nn.Conv2d``, or pads other than
            with zeros given as numbers.
    """
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f'{caller}: conv must be an nn.Conv2d, got '
                         f'{type(conv).__name__}.')
    if isinstance(conv.padding, str) or (zero_padding_only and
                                         conv.padding_mode != 'zeros'):
        kind = 'zero padding' if zero_padding_only else 'padding'
        raise ValueError(
            f'{caller}: only {kind} given as numbers is supported, got '
            f'padding={conv.padding!r}, padding_mode={conv.padding_mode!r}; '
            'rebuild the conv with an explicit int padding.')
    return dict(
        in_channels=conv.in_channels,
        out_channels=conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None)


@torch.no_grad()
def adopt_plain_conv(layer: nn.Module, conv: nn.Conv2d) -> nn.Module:
    """Give ``layer`` ``conv``'s weight and bias, device, dtype and mode.

    ``layer`` is marked initialised, so mmengine's ``init_weights`` leaves
    the adopted weights alone.
    """
    layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
    layer.weight.copy_(conv.weight)
    if conv.bias is not None:
        layer.bias.copy_(conv.bias)
    layer.is_init = True
    return adopt_conv_trainability(layer, conv)


# ------------------------------------------------------- trainability
def _leaf_name(name: str) -> str:
    return name.rsplit('.', 1)[-1]


def adopt_conv_trainability(layer: nn.Module, conv: nn.Module) -> nn.Module:
    """Give ``layer`` (built from ``conv``) ``conv``'s mode and freezes.

    ``layer.train(conv.training)``; then a parameter of ``layer`` whose
    counterpart in ``conv`` is frozen is frozen: ``layer``'s ``bias`` (the
    conv's bias) follows ``conv.bias``, every other parameter (the kernel
    and the variant's own new tensors: DO-Conv's ``D_delta``, RefConv's
    ``refocus_weight``, CondConv's experts and routing) follows
    ``conv.weight``. Parameters of a trainable counterpart keep the
    layer's own choice (a multi-domain layer keeps its inactive domains
    frozen). So a variant swapped into a frozen stage is frozen exactly as
    the conv it replaces, before any ``train()`` call refreezes the stage
    (DDP registers the trainable parameters when it wraps the model).

    Returns:
        nn.Module: ``layer``, changed in place.
    """
    layer.train(conv.training)
    weight = getattr(conv, 'weight', None)
    bias = getattr(conv, 'bias', None)
    weight_grad = weight.requires_grad if isinstance(
        weight, torch.Tensor) else True
    bias_grad = bias.requires_grad if isinstance(
        bias, torch.Tensor) else weight_grad
    froze_all = True
    for name, param in layer.named_parameters():
        if not (bias_grad if name == 'bias' else weight_grad):
            param.requires_grad_(False)
        froze_all = froze_all and not param.requires_grad
    forget = getattr(layer, 'forget_domain_freezes', None)
    if froze_all and callable(forget):
        forget()  # a later domain switch must not unfreeze them
    return layer


def folded_trainability(layer: nn.Module) -> Tuple[bool, bool]:
    """``(weight, bias)`` trainability of ``layer``'s fold (see
    :meth:`~mmconvplug.convs.base.FoldableConvMixin.folded_requires_grad`)."""
    named = list(layer.named_parameters())
    weight_grad = any(p.requires_grad for n, p in named
                      if _leaf_name(n) != 'bias')
    own_bias = layer._parameters.get('bias')
    if own_bias is not None:
        bias_grad = own_bias.requires_grad
    else:
        bias_grad = any(p.requires_grad for _, p in named)
    return weight_grad, bias_grad


def freeze_like(folded: nn.Module, layer: nn.Module) -> nn.Module:
    """Freeze every parameter of ``folded`` when ``layer`` (the variant
    it was folded from) has parameters and none of them requires grad.

    The fold engine's guarantee for any foldable variant, also one whose
    ``fold()`` does not set trainability itself: a frozen variant folds to
    frozen modules.
    """
    params = list(layer.parameters())
    if params and not any(p.requires_grad for p in params):
        folded.requires_grad_(False)
    return folded
