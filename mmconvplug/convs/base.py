"""The conv-variant contract: what a conv variant is, in one place.

A *conv variant* is a class registered in mmengine's root ``MODELS`` that
declares this contract, by subclassing :class:`ConvVariantMixin` (through
:class:`FoldableConvMixin` or :class:`NonFoldableConvMixin`) or, duck-typed,
by a boolean class attribute ``foldable``. Everything that needs to know
which layers are variants asks :func:`conv_variants` (classes, by registered
name) or :func:`is_conv_variant` (a module): the fold engine, the checkpoint
guard, the pretrained-checkpoint converter, the benchmarks, the demo and
``python -m mmconvplug info``. There is no hand-kept list of names.

A variant provides:

1. **The ``nn.Conv2d`` constructor.** ``__init__(in_channels, out_channels,
   kernel_size, stride, padding, dilation, groups, bias, ...)`` with these
   names in this order (what ``mmcv.cnn.build_conv_layer`` and ``ConvModule``
   pass, positionally or by keyword); every further argument has a default.
   It builds at the reference geometry :data:`REFERENCE_ARGS` /
   :data:`REFERENCE_KWARGS` (8 -> 8 channels, 3x3, padding 1) with its
   defaults: the checkpoint guard and the contract tests build it so.
2. **The attributes ``ConvModule`` reads**, :data:`CONV_ATTRIBUTES`
   (:class:`ConvAttributesMixin` sets them).
3. **``foldable`` and ``fold()``.** ``foldable`` is a bool (an instance may
   turn it off, e.g. DWSConv with a gate). A foldable layer's ``fold()``
   returns plain modules (normally one ``nn.Conv2d``) computing the same
   function in eval mode, on the layer's device and dtype, in full precision
   even under autocast, in the layer's training mode and frozen where the
   layer is (:meth:`FoldableConvMixin.folded_requires_grad`). Otherwise
   ``fold()`` raises
   :class:`FoldUnsupportedError` with ``fold_unsupported_reason``.
4. **``from_conv(conv, **kwargs)``**, a classmethod returning the variant
   that computes exactly what the plain ``nn.Conv2d`` ``conv`` computes
   (marked initialised, in ``conv``'s training mode, device and dtype,
   and frozen where ``conv`` is: :func:`adopt_conv_trainability`). A
   variant that cannot be exact sets ``from_conv_unsupported_reason``
   instead, and the inherited ``from_conv`` raises
   :class:`FromConvUnsupportedError` with it. When ``from_conv`` takes
   hyper-parameters, the instance method ``from_conv_kwargs()`` returns the
   values that rebuild a layer like this one (the converter uses it; names
   are never guessed from attributes).
5. **``new_tensor_names()``**: the state-dict keys, relative to the layer,
   that a plain ``nn.Conv2d`` checkpoint of the same geometry cannot provide
   (DO-Conv's ``D_delta``, RefConv's ``refocus_weight``, CondConv's expert
   stack and routing, ...). The default names every key whose tensor is not
   a plain conv's ``weight`` / ``bias`` of the layer's geometry.

A class that subclasses :class:`ConvVariantMixin` is checked when it is
defined; one that only declares ``foldable`` is checked by
:func:`conv_variants`. Either way a broken contract raises
:class:`ConvVariantContractError` naming the class and what is missing:
it is never skipped.

Why a variant is not an ``nn.Conv2d`` subclass: code that matches
``isinstance(m, nn.Conv2d)`` reads ``m.weight`` as the kernel the module
applies. For DO-Conv and RefConv ``weight`` is the *basis* (the effective
kernel is composed from it), for CondConv an expert stack, for DWSConv it
does not exist. mmcv's ``fuse_conv_bn`` and ``efficient_conv_bn_eval``
(and anything else that reads ``.weight`` of an ``nn.Conv2d``) would then
fuse a BN into the basis and silently compute a different network. Not
being one, a variant is left alone: fold it first (``fold_model``) and such
tools see plain convs. ``docs/conformance.md`` lists what each upstream
special case of a conv does with a variant.

Where the code lives (every name is importable from this module): the
mixins and the class check in :mod:`.mixins`, the query in :mod:`.query`,
the ``nn.Conv2d`` geometry in :mod:`.attributes`, the ``from_conv`` and
trainability helpers in :mod:`.from_conv`, and the precision and export
helpers in :mod:`mmconvplug.utils.torch_helpers`.

Example:
    >>> import torch
    >>> from mmconvplug.convs import conv_variants, is_conv_variant
    >>> sorted(conv_variants())  # doctest: +SKIP
    ['CondConv', 'DOConv', 'DWSConv', 'RefConv', 'SCConv']
    >>> conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    >>> layer = conv_variants()['DOConv'].from_conv(conv)
    >>> is_conv_variant(layer), layer.foldable
    (True, True)
"""
from mmconvplug.utils.torch_helpers import full_precision, is_exporting

from .attributes import (
    CONV_ARGUMENTS,
    CONV_ATTRIBUTES,
    ConvAttributesMixin,
    IntOrPair,
)
from .from_conv import (
    adopt_conv_trainability,
    adopt_plain_conv,
    folded_trainability,
    freeze_like,
    plain_conv_geometry,
)
from .mixins import (
    ConvVariantContractError,
    ConvVariantMixin,
    FoldableConvMixin,
    FoldUnsupportedError,
    FromConvUnsupportedError,
    NonFoldableConvMixin,
    check_conv_variant_class,
    declares_conv_variant_contract,
)
from .query import (
    REFERENCE_ARGS,
    REFERENCE_KWARGS,
    build_reference_layer,
    conv_variants,
    is_conv_variant,
    is_foldable,
)

__all__ = [
    'CONV_ARGUMENTS', 'CONV_ATTRIBUTES', 'ConvAttributesMixin', 'IntOrPair',
    'ConvVariantContractError', 'FoldUnsupportedError',
    'FromConvUnsupportedError', 'ConvVariantMixin', 'FoldableConvMixin',
    'NonFoldableConvMixin', 'REFERENCE_ARGS', 'REFERENCE_KWARGS',
    'build_reference_layer', 'check_conv_variant_class', 'conv_variants',
    'declares_conv_variant_contract', 'is_conv_variant', 'is_foldable',
    'full_precision', 'is_exporting', 'adopt_conv_trainability',
    'adopt_plain_conv', 'folded_trainability', 'freeze_like',
    'plain_conv_geometry'
]
