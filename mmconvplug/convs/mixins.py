"""The conv-variant contract's defaults and its check.

The mixins a variant subclasses (:class:`FoldableConvMixin`,
:class:`NonFoldableConvMixin`) and :func:`check_conv_variant_class`, which
says what a class lacks of the contract; :mod:`mmconvplug.convs.base`
states the contract, and every name here is importable from it.
"""
import inspect
from abc import ABCMeta, abstractmethod
from typing import FrozenSet, List, Optional, Tuple

import torch
from torch import nn

from mmconvplug.utils.torch_helpers import full_precision

from .attributes import CONV_ARGUMENTS, ConvAttributesMixin
from .from_conv import folded_trainability


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
    :func:`check_conv_variant_class` when defined.
    """

    foldable: bool
    fold_unsupported_reason = ''
    from_conv_unsupported_reason = ''

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if issubclass(cls, nn.Module) and not abstract_methods(cls):
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
