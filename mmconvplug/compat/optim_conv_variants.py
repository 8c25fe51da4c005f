"""Give a conv variant's parameters the optimizer groups of the replaced conv.

mmengine's ``DefaultOptimWrapperConstructor.add_params`` applies
``paramwise_cfg`` per module, and recognises a depthwise conv by
``isinstance(module, nn.Conv2d) and module.in_channels == module.groups``.
Conv variants are not ``nn.Conv2d`` subclasses, so with
``paramwise_cfg=dict(dwconv_decay_mult=0.)`` a stock depthwise kernel gets
weight decay 0 while the DOConv / RefConv / CondConv tensors replacing it
get the full decay: swapping a conv silently changes the stock recipe. The
same holds for ``flat_decay_mult`` on CondConv's bias stack (2-d where the
conv's bias is 1-d) and for ``dcn_offset_lr_mult``.

We wrap ``add_params`` so that a conv variant (the contract's query, asked
through :func:`mmconvplug.registry.is_conv_variant`) is treated as the
``nn.Conv2d`` of its geometry. Each of its own parameters
(``named_parameters(recurse=False)``) gets the group mmengine's own rules
give the replaced conv's tensor:

* ``bias`` (the variant's bias, CondConv's expert biases included) -> the
  group of the conv's ``bias``;
* every other parameter -> the group of the conv's ``weight``: the kernel
  (DO-Conv's ``weight``, CondConv's expert stack) and the variant's own new
  kernel tensors (DO-Conv's ``D_delta`` / ``weight_extra``, RefConv's
  ``refocus_weight``), since they parametrise that kernel.

The rules are mmengine's: each parameter is run through the original
``add_params`` on a stand-in ``nn.Conv2d`` (on the meta device, no memory)
holding one tensor of the replaced conv's shape under the parameter's own
name, with its ``requires_grad``; the group it gets is given the real
parameter. So ``custom_keys`` (matched on the real names, ``D_delta``
included), ``bias_lr_mult``, ``bias_decay_mult``, ``dwconv_decay_mult``,
``flat_decay_mult``, ``dcn_offset_lr_mult``, the skip of frozen parameters
and their log lines behave as for the conv; ``bypass_duplicate`` is checked
on the real parameter. A variant's sub-modules (CondConv's ``routing``
``nn.Linear``, the inner convs and norms of DWSConv and SCConv) are plain
torch modules and get mmengine's rules for what they are. Constructors that
override ``add_params`` without calling it (mmdet/mmseg's layer-wise decay
constructors, which go by names and shapes) are not changed.

An extension (it is applied on every version): written against the
``add_params`` of mmengine 0.7.0 - 0.10.7 (0.10.7 is the newest release
checked). Upstream code:
https://github.com/open-mmlab/mmengine/blob/v0.10.7/mmengine/optim/optimizer/default_constructor.py
"""
import functools
import logging
from typing import List, Optional

import torch
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmconvplug.registry import is_conv_variant

from .upstream import UpstreamChange


def replaced_conv_tensor_shape(variant: nn.Module, name: str) -> tuple:
    """Shape of the plain-conv tensor whose group parameter ``name`` of
    ``variant`` gets: the bias ``(C_out,)`` for ``'bias'``, else the weight
    ``(C_out, C_in / groups, kh, kw)``."""
    if name == 'bias':
        return (variant.out_channels, )
    return (variant.out_channels, variant.in_channels // variant.groups,
            *variant.kernel_size)


def stand_in_conv(variant: nn.Module) -> nn.Conv2d:
    """An ``nn.Conv2d`` on the meta device with ``variant``'s geometry."""
    return nn.Conv2d(
        variant.in_channels,
        variant.out_channels,
        tuple(variant.kernel_size),
        stride=tuple(variant.stride),
        padding=tuple(variant.padding),
        dilation=tuple(variant.dilation),
        groups=variant.groups,
        bias=True,
        device='meta')


def _add_variant_params(constructor, original, params: List[dict],
                        variant: nn.Module, prefix: str,
                        is_dcn_module) -> None:
    bypass_duplicate = constructor.paramwise_cfg.get(
        'bypass_duplicate', False)
    stand_in = stand_in_conv(variant)
    for name, param in variant.named_parameters(recurse=False):
        if bypass_duplicate and constructor._is_in({'params': [param]},
                                                   params):
            print_log(
                f'{prefix} is duplicate. It is skipped since '
                f'bypass_duplicate={bypass_duplicate}',
                logger='current',
                level=logging.WARNING)
            continue
        proxy = nn.Parameter(
            torch.empty(
                replaced_conv_tensor_shape(variant, name),
                dtype=param.dtype, device='meta'),
            requires_grad=param.requires_grad)
        stand_in._parameters.clear()
        stand_in._parameters[name] = proxy
        groups: List[dict] = []
        original(constructor, groups, stand_in, prefix, is_dcn_module)
        for group in groups:
            group['params'] = [param if p is proxy else p
                               for p in group['params']]
        params.extend(groups)


def patch_optim_conv_variants() -> None:
    """Install the wrapper of ``add_params`` once (idempotent)."""
    original = DefaultOptimWrapperConstructor.add_params
    if getattr(original, '_mmconvplug_patched', False):
        return

    @functools.wraps(original)
    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[bool] = None) -> None:
        if not is_conv_variant(module):
            return original(self, params, module, prefix, is_dcn_module)
        _add_variant_params(self, original, params, module, prefix,
                            is_dcn_module)
        for child_name, child in module.named_children():
            child_prefix = f'{prefix}.{child_name}' if prefix else child_name
            self.add_params(
                params, child, prefix=child_prefix, is_dcn_module=False)

    add_params._mmconvplug_patched = True
    add_params._mmconvplug_original = original
    DefaultOptimWrapperConstructor.add_params = add_params


FIX = UpstreamChange(
    kind='extension',
    name='optim_conv_variants',
    package='mmengine',
    versions='>=0.7.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/blob/v0.10.7/mmengine/'
    'optim/optimizer/default_constructor.py',
    summary='DefaultOptimWrapperConstructor.add_params gives a conv '
    "variant's parameters the paramwise_cfg groups of the nn.Conv2d it "
    'replaces (dwconv_decay_mult, flat_decay_mult, ...): upstream treats a '
    'variant as a plain module',
    apply=patch_optim_conv_variants)
