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
from abc import ABCMeta, abstractmethod
from typing import FrozenSet, Optional, Tuple

import torch
from torch import nn

from mmconvplug.utils.torch_helpers import full_precision, is_exporting
from .attributes import (CONV_ARGUMENTS, CONV_ATTRIBUTES, ConvAttributesMixin,
                         IntOrPair)
from .from_conv import (adopt_conv_trainability, adopt_plain_conv,
                        folded_trainability, freeze_like, plain_conv_geometry)


class ConvVariantContractError(TypeError):
    """A class declares the conv-variant contract but does not keep it."""


class FoldUnsupportedError(RuntimeError):
    """Raised by ``fold()`` of a conv variant that cannot become a plain conv.

    The message says why (the variant's ``fold_unsupported_reason``), so a
    user who asked to fold such a layer learns what to change.
    """


class FromConvUnsupportedError(ValueError):
    """Raised by ``from_conv()`` of a variant that cannot equal a plain conv.

    The message says why (the variant's ``from_conv_unsupported_reason``).
    """


class ConvVariantMixin(ConvAttributesMixin):
    """Base of every conv variant: the contract's defaults and its check.

    Subclasses (with ``nn.Module``) are checked by
    :func:`~mmconvplug.convs.query.check_conv_variant_class` when
    defined.
    """

    foldable: bool
    fold_unsupported_reason = ''
    from_conv_unsupported_reason = ''

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if issubclass(cls, nn.Module):
            from .query import abstract_methods, raise_if_broken
            if not abstract_methods(cls):
                raise_if_broken(cls)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> nn.Module:
        """Refuse: this variant cannot compute exactly what a plain conv
        does; raise :class:`FromConvUnsupportedError` saying why."""
        raise FromConvUnsupportedError(
            f'{cls.__name__} cannot be built to equal a plain nn.Conv2d: '
            f'{cls.from_conv_unsupported_reason}')

    def from_conv_kwargs(self) -> dict:
        """Keyword arguments of :meth:`from_conv` that rebuild this layer's
        hyper-parameters (none by default)."""
        return {}

    def new_tensor_names(self) -> FrozenSet[str]:
        """State-dict keys a plain ``nn.Conv2d`` checkpoint cannot provide.

        Every key except ``weight`` (shape ``(C_out, C_in / groups, kh,
        kw)``) and ``bias`` (``(C_out,)``) with the plain conv's shapes.
        """
        plain = {
            'weight': (self.out_channels, self.in_channels // self.groups,
                       *self.kernel_size),
            'bias': (self.out_channels, ),
        }
        return frozenset(
            key for key, tensor in self.state_dict().items()
            if plain.get(key) != tuple(tensor.shape))


class FoldableConvMixin(ConvVariantMixin, metaclass=ABCMeta):
    """A conv variant that folds, exactly, into one ``nn.Conv2d``.

    Subclasses implement :meth:`folded_weight_and_bias`; :meth:`fold` builds
    the plain conv from it, on the same device and dtype, with autocast off.
    """

    foldable = True

    @abstractmethod
    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Return ``(weight, bias)`` of the equivalent plain conv.

        ``weight`` has shape ``(out, in // groups, kh, kw)``; ``bias`` is a
        tensor of shape ``(out,)`` or ``None``.
        """

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """Return a plain ``nn.Conv2d`` that computes what this layer does.

        Computed in the parameters' dtype even under autocast.
        """
        with full_precision():
            weight, bias = self.folded_weight_and_bias()
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=bias is not None,
            device=weight.device,
            dtype=weight.dtype)
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
        weight_grad, bias_grad = self.folded_requires_grad()
        conv.weight.requires_grad_(weight_grad)
        if bias is not None:
            conv.bias.requires_grad_(bias_grad)
        conv.train(self.training)
        return conv

    def folded_requires_grad(self) -> Tuple[bool, bool]:
        """``(weight, bias)``: whether the fold's tensors require grad.

        A folded tensor is trainable when a tensor of the layer it is
        computed from is: the weight when any parameter other than a bias
        does (DO-Conv's ``weight`` / ``D_delta``, RefConv's
        ``refocus_weight``, ...); the bias as the layer's own ``bias``
        does, or, for a layer whose folded bias is computed from its parts
        (DWSConv), when any parameter does. A frozen layer (``frozen_stages``,
        ``requires_grad_(False)``) so folds to a frozen conv, and a
        trainable one to a trainable conv.
        """
        return folded_trainability(self)


class NonFoldableConvMixin(ConvVariantMixin):
    """A conv variant that computes something no single plain conv can.

    Subclasses set :attr:`fold_unsupported_reason`; :func:`is_foldable` is
    False for them and :meth:`fold` raises :class:`FoldUnsupportedError`
    with that reason, so the fold engine keeps the layer and reports why.
    """

    foldable = False

    def fold(self) -> nn.Conv2d:
        """Refuse: raise :class:`FoldUnsupportedError` saying why."""
        raise FoldUnsupportedError(
            f'{type(self).__name__} cannot be folded into a plain '
            f'nn.Conv2d: {self.fold_unsupported_reason}')


# The query and the class check build on the classes above; they are
# importable from here as before (``mmconvplug.convs.base.conv_variants``).
from .query import (REFERENCE_ARGS, REFERENCE_KWARGS,  # noqa: E402
                    build_reference_layer, check_conv_variant_class,
                    conv_variants, declares_conv_variant_contract,
                    is_conv_variant, is_foldable)

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
