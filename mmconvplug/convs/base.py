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
import contextlib
import inspect
from abc import ABCMeta, abstractmethod
from typing import Dict, FrozenSet, Iterator, List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from mmconvplug.utils.torch_compat import is_compiling

IntOrPair = Union[int, Tuple[int, int]]

#: Attributes that ``ConvModule`` and mmdet/mmseg layers read off a conv.
CONV_ATTRIBUTES = ('in_channels', 'out_channels', 'kernel_size', 'stride',
                   'padding', 'dilation', 'groups', 'transposed',
                   'output_padding')

#: ``nn.Conv2d``'s leading constructor arguments, in order.
CONV_ARGUMENTS = ('in_channels', 'out_channels', 'kernel_size', 'stride',
                  'padding', 'dilation', 'groups', 'bias')

#: The geometry every variant must build at with its defaults:
#: ``cls(*REFERENCE_ARGS, **REFERENCE_KWARGS)``.
REFERENCE_ARGS = (8, 8, 3)
REFERENCE_KWARGS = dict(stride=1, padding=1)


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


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Disable every active autocast (CPU, CUDA, ...) inside the block.

    Kernel compositions and folds run in the parameters' own dtype under
    it; ``F.conv2d`` outside still follows autocast.
    """
    legacy = {'cpu': getattr(torch, 'is_autocast_cpu_enabled', None),
              'cuda': torch.is_autocast_enabled}
    with contextlib.ExitStack() as stack:
        for device_type in ('cpu', 'cuda', 'xpu', 'mps'):
            try:
                enabled = torch.is_autocast_enabled(device_type)
            except TypeError:  # torch < 2.4: no device_type argument
                query = legacy.get(device_type)
                enabled = bool(query and query())
            except RuntimeError:  # a device type this build lacks
                continue
            if enabled:
                stack.enter_context(
                    torch.autocast(device_type=device_type, enabled=False))
        yield


def is_exporting() -> bool:
    """True while a graph is recorded: ``torch.jit.trace``,
    ``torch.onnx.export`` (either exporter), ``torch.export`` and
    ``torch.compile``.

    Layers then take their trace-safe computation (no Python-side caches,
    no custom autograd functions, no batch size baked into the graph).
    """
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or is_compiling())


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
        if issubclass(cls, nn.Module) and not _abstract_methods(cls):
            _raise_if_broken(cls)

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
def _abstract_methods(cls: type) -> List[str]:
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
    abstract = _abstract_methods(cls)
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


def _raise_if_broken(cls: type) -> None:
    problems = check_conv_variant_class(cls)
    if problems:
        raise ConvVariantContractError(
            f'{cls.__module__}.{cls.__qualname__} declares the mmconvplug '
            f'conv-variant contract but breaks it: ' + '; '.join(problems) +
            '. See mmconvplug/convs/base.py for what a variant provides.')


# ------------------------------------------------------------ the query
def conv_variants() -> Dict[str, type]:
    """``{registered name: class}`` of every conv variant in root MODELS.

    Raises:
        ConvVariantContractError: a registered class declares the contract
            (see the module docstring) but does not keep it.
    """
    from mmengine.registry import MODELS
    variants = {}
    for name, cls in sorted(MODELS.module_dict.items()):
        if declares_conv_variant_contract(cls):
            _raise_if_broken(cls)
            variants[name] = cls
    return variants


def is_conv_variant(module: nn.Module) -> bool:
    """True for an instance of a class that declares the contract."""
    return declares_conv_variant_contract(type(module))


def is_foldable(module: nn.Module) -> bool:
    """True for a conv variant the fold engine can replace by its fold."""
    return (is_conv_variant(module)
            and bool(getattr(module, 'foldable', False)))


def build_reference_layer(cls: type) -> nn.Module:
    """``cls`` at the reference geometry, with the RNG state preserved.

    Raises:
        ConvVariantContractError: ``cls`` does not build there.
    """
    with torch.random.fork_rng(devices=[]):
        try:
            return cls(*REFERENCE_ARGS, **REFERENCE_KWARGS)
        except Exception as exc:
            raise ConvVariantContractError(
                f'{cls.__name__} must build as {cls.__name__}'
                f'{REFERENCE_ARGS[:3]} with {REFERENCE_KWARGS} and its '
                f'defaults (the conv-variant contract), but raised '
                f'{type(exc).__name__}: {exc}') from exc


# ------------------------------------------------- from_conv helpers
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
    :meth:`FoldableConvMixin.folded_requires_grad`)."""
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
