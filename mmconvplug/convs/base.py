"""The small protocol every mmconvplug conv variant follows.

A variant is a drop-in for ``nn.Conv2d``: it is built through
``mmcv.cnn.build_conv_layer(cfg, in_channels, out_channels, kernel_size,
stride=..., padding=..., dilation=..., groups=..., bias=...)`` and exposes the
attributes ``ConvModule`` and mmdet/mmseg code read off a conv
(:data:`CONV_ATTRIBUTES`).

A *foldable* variant can be replaced, after training, by a plain
``nn.Conv2d`` computing the same function; it subclasses
:class:`FoldableConvMixin` and implements :meth:`FoldableConvMixin.fold`.
A variant that cannot fold (CondConv's kernel depends on the input) sets
``foldable = False`` and says why in ``fold_unsupported_reason``; the fold
engine then keeps it and reports the reason.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.modules.utils import _pair

IntOrPair = Union[int, Tuple[int, int]]

#: Attributes that ``ConvModule`` and mmdet/mmseg layers read off a conv.
CONV_ATTRIBUTES = ('in_channels', 'out_channels', 'kernel_size', 'stride',
                   'padding', 'dilation', 'groups', 'transposed',
                   'output_padding')


class ConvAttributesMixin:
    """Stores the ``nn.Conv2d`` geometry under the names ConvModule reads."""

    def _set_conv_attributes(self,
                             in_channels: int,
                             out_channels: int,
                             kernel_size: IntOrPair,
                             stride: IntOrPair = 1,
                             padding: IntOrPair = 0,
                             dilation: IntOrPair = 1,
                             groups: int = 1) -> None:
        for name, value in (('in_channels', in_channels),
                            ('out_channels', out_channels),
                            ('groups', groups)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{type(self).__name__}: {name} must be a positive int, '
                    f'got {value!r}.')
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f'{type(self).__name__}: groups={groups} must divide both '
                f'in_channels={in_channels} and out_channels={out_channels}.')
        if isinstance(padding, str):
            raise ValueError(
                f'{type(self).__name__}: string padding {padding!r} is not '
                'supported; pass the padding as int or (int, int).')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.transposed = False
        self.output_padding = (0, 0)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}')
        if self.padding != (0, 0):
            s += f', padding={self.padding}'
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.groups != 1:
            s += f', groups={self.groups}'
        return s


class FoldableConvMixin(ConvAttributesMixin, metaclass=ABCMeta):
    """A conv variant that folds, exactly, into one ``nn.Conv2d``.

    Subclasses implement :meth:`folded_weight_and_bias`; :meth:`fold` builds
    the plain conv from it, on the same device and dtype.
    """

    foldable = True
    fold_unsupported_reason = ''

    @abstractmethod
    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Return ``(weight, bias)`` of the equivalent plain conv.

        ``weight`` has shape ``(out, in // groups, kh, kw)``; ``bias`` is a
        tensor of shape ``(out,)`` or ``None``.
        """

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """Return a plain ``nn.Conv2d`` that computes what this layer does."""
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
        conv.train(self.training)
        return conv


def plain_conv_geometry(conv: nn.Module,
                        caller: str,
                        zero_padding_only: bool = True) -> dict:
    """Check ``conv`` is a plain ``nn.Conv2d`` a variant can be built from.

    Used by the variants' ``from_conv``; returns the conv's geometry as the
    keyword arguments every variant's constructor takes.
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
    layer.train(conv.training)
    return layer


def is_foldable(module: nn.Module) -> bool:
    """True for a module the fold engine can replace by a plain conv."""
    return bool(getattr(module, 'foldable', False)) and callable(
        getattr(module, 'fold', None))


class FoldUnsupportedError(RuntimeError):
    """Raised by ``fold()`` of a conv variant that cannot become a plain conv.

    The message says why (the variant's ``fold_unsupported_reason``), so a
    user who asked to fold such a layer learns what to change.
    """


class NonFoldableConvMixin(ConvAttributesMixin):
    """A conv variant that computes something no single plain conv can.

    Subclasses set :attr:`fold_unsupported_reason`; :func:`is_foldable` is
    False for them and :meth:`fold` raises :class:`FoldUnsupportedError`
    with that reason, so the fold engine keeps the layer and reports why.
    """

    foldable = False
    fold_unsupported_reason = 'this conv variant cannot be folded.'

    def fold(self) -> nn.Conv2d:
        """Refuse: raise :class:`FoldUnsupportedError` saying why."""
        raise FoldUnsupportedError(
            f'{type(self).__name__} cannot be folded into a plain '
            f'nn.Conv2d: {self.fold_unsupported_reason}')
