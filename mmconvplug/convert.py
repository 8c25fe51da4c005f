"""Turn a plain pretrained checkpoint into the init of a conv-variant model.

A plain checkpoint (torchvision, mmdet/mmseg/mmpretrain ResNet or VGG, a
whole mmdet model) stores each conv as ``<name>.weight`` (and
``<name>.bias``). A variant model stores different tensors under the same
``<name>``: DO-Conv a kernel ``W`` and an over-parameterisation ``D``,
RefConv a frozen basis and a refocusing conv, CondConv a stack of experts
and a routing layer. Each variant's ``from_conv(conv)`` builds the variant
that computes *exactly* what the plain conv computes (DO-Conv: ``W`` from
the kernel, ``D`` at identity; RefConv: basis from the kernel; CondConv:
experts from the kernel), so fine-tuning starts from the pretrained
function. This module applies it key by key and keeps every other key
(norms, heads, ``meta``) unchanged.

Two ways to say which convs become variants:

* ``model=``: a built variant model (``tools/convert_pretrained.py
  --config``). Exactly its variant convs are converted, with their own
  hyper-parameters (``num_experts``, ``D_mul``, ...), and the checkpoint's
  key prefix is matched to the model's (a torchvision ``layer1.0.conv1``
  is the model's ``backbone.layer1.0.conv1``).
* no model: every 4-d conv kernel (groups=1) becomes the variant with its
  default hyper-parameters (``variant_kwargs`` overrides them).
"""
import inspect
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import torch
from torch import nn

from .convs.base import conv_variants
from .utils.checkpoint_io import plain_checkpoint, to_plain_data
from .utils.checkpoint_layout import CheckpointLayout, read_checkpoint_layout
from .utils.removed import removed_names


class _ConvertibleVariants(Mapping):
    """``--variant`` name (lower case) -> registered conv type name.

    Every registered conv variant that can be built exactly from a plain
    conv (no ``from_conv_unsupported_reason``), looked up on each use, so a
    variant registered later (a user's own) is included.
    """

    def _current(self) -> Dict[str, str]:
        return {
            name.lower(): name
            for name, cls in conv_variants().items()
            if not getattr(cls, 'from_conv_unsupported_reason', '')
        }

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


#: ``--variant`` name -> registered conv type, from the contract's query.
VARIANT_TYPES: Mapping[str, str] = _ConvertibleVariants()

StateDict = Dict[str, torch.Tensor]


def variant_class(variant: str) -> type:
    """The conv class of ``variant``: a key of :data:`VARIANT_TYPES` or a
    registered type name (``'doconv'`` or ``'DOConv'``).

    Raises:
        ValueError: no registered conv variant of that name can be built
            from a plain conv.
    """
    types = dict(VARIANT_TYPES)
    name = types.get(variant, variant)
    if name not in types.values():
        raise ValueError(
            f'variant={variant!r} is not a registered conv variant that can '
            f'be built from a plain conv; choose one of {sorted(types)} '
            '(import the package that registers it first).')
    return conv_variants()[name]


def _plain_conv(weight: torch.Tensor, bias: Optional[torch.Tensor],
                like: Optional[nn.Module] = None) -> nn.Conv2d:
    """An ``nn.Conv2d`` holding ``weight``/``bias``, geometry of ``like``."""
    out_channels, in_per_group, kh, kw = weight.shape
    groups = getattr(like, 'groups', 1)
    conv = nn.Conv2d(
        in_per_group * groups,
        out_channels, (kh, kw),
        stride=getattr(like, 'stride', 1),
        padding=getattr(like, 'padding', 0),
        dilation=getattr(like, 'dilation', 1),
        groups=groups,
        bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def _from_conv_kwargs(cls: type, like: Optional[nn.Module],
                      overrides: Optional[dict]) -> dict:
    """``from_conv`` keyword arguments: the model layer's own
    hyper-parameters (its ``from_conv_kwargs()``, the contract's way to
    say them), then ``overrides``.

    Raises:
        ValueError: a name that ``cls.from_conv`` does not take.
    """
    kwargs = dict(like.from_conv_kwargs()) if like is not None else {}
    kwargs.update(overrides or {})
    signature = inspect.signature(cls.from_conv)
    takes = list(signature.parameters)[1:]
    unknown = set(kwargs) - set(takes)
    if unknown and not any(p.kind == p.VAR_KEYWORD
                           for p in signature.parameters.values()):
        source = ('overrides' if like is None or unknown & set(overrides or {})
                  else f'{type(like).__name__}.from_conv_kwargs()')
        raise ValueError(
            f'{cls.__name__}.from_conv does not take {sorted(unknown)} '
            f'(from {source}); it takes {takes}.')
    return kwargs


def _convert_one(state_dict: StateDict, key_prefix: str, cls: type,
                 like: Optional[nn.Module],
                 overrides: Optional[dict]) -> StateDict:
    """Replace ``key_prefix.weight``/``.bias`` by the variant's tensors."""
    weight = state_dict[f'{key_prefix}.weight']
    bias = state_dict.get(f'{key_prefix}.bias')
    conv = _plain_conv(weight.float(), None if bias is None else bias.float(),
                       like)
    variant = cls.from_conv(conv, **_from_conv_kwargs(cls, like, overrides))
    if like is not None:
        expected = {k: v.shape for k, v in like.state_dict().items()}
        got = {k: v.shape for k, v in variant.state_dict().items()}
        if expected != got or like.extra_repr() != variant.extra_repr():
            raise ValueError(
                f'convert: the checkpoint conv {key_prefix!r} (kernel '
                f'{tuple(weight.shape)}) does not match the model layer '
                f'({type(like).__name__}); expected {like.extra_repr()} with '
                f'tensors {expected}, converted {variant.extra_repr()} with '
                f'{got}. Is this checkpoint for this model?')
    converted = {}
    for name, tensor in variant.state_dict().items():
        converted[f'{key_prefix}.{name}'] = tensor.to(weight.dtype) \
            if tensor.is_floating_point() else tensor
    return converted


def match_prefix(model_keys: List[str], checkpoint_keys: List[str]) -> str:
    """The prefix to strip from model keys to find them in the checkpoint.

    Picks, among ``''`` and every dotted prefix of the model's keys, the one
    under which most model keys exist in the checkpoint (``'backbone.'`` for
    a torchvision/backbone checkpoint and a whole detector model).
    """
    checkpoint_keys = set(checkpoint_keys)
    candidates = {''}
    for key in model_keys:
        parts = key.split('.')
        for depth in range(1, min(len(parts), 3)):
            candidates.add('.'.join(parts[:depth]) + '.')
    best, best_hits = '', -1
    for prefix in sorted(candidates, key=len):
        hits = sum(1 for k in model_keys
                   if k.startswith(prefix) and k[len(prefix):] in
                   checkpoint_keys)
        if hits > best_hits:
            best, best_hits = prefix, hits
    return best


def convert_state_dict(
        state_dict: StateDict,
        variant: str,
        model: Optional[nn.Module] = None,
        variant_kwargs: Optional[dict] = None
) -> Tuple[StateDict, List[str]]:
    """Return ``(converted state dict, names of the converted convs)``.

    Raises:
        ValueError: unknown variant; with ``model``, a model that has no
            layer of the variant, or a checkpoint none of whose convs match
            the model's variant layers.
    """
    cls = variant_class(variant)
    new_state = dict(state_dict)
    converted: List[str] = []
    if model is None:
        for key, tensor in state_dict.items():
            if key.endswith('.weight') and tensor.dim() == 4:
                prefix = key[:-len('.weight')]
                del new_state[key]
                new_state.pop(f'{prefix}.bias', None)
                new_state.update(
                    _convert_one(state_dict, prefix, cls, None,
                                 variant_kwargs))
                converted.append(prefix)
        return new_state, converted

    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, cls)]
    if not layers:
        raise ValueError(
            f'convert: the model has no {cls.__name__} layer; build it from '
            f'a config whose conv_cfg is dict(type="{cls.__name__}") (or '
            'pick the matching --variant).')
    prefix = match_prefix(list(model.state_dict()), list(state_dict))
    for name, layer in layers:
        if not name.startswith(prefix):
            continue
        key_prefix = name[len(prefix):]
        if f'{key_prefix}.weight' not in state_dict:
            continue
        del new_state[f'{key_prefix}.weight']
        new_state.pop(f'{key_prefix}.bias', None)
        new_state.update(
            _convert_one(state_dict, key_prefix, cls, layer, variant_kwargs))
        converted.append(key_prefix)
    if not converted:
        raise ValueError(
            f'convert: none of the model\'s {len(layers)} {cls.__name__} '
            f'layers (e.g. {layers[0][0]!r}) has a plain kernel in the '
            'checkpoint; check the checkpoint belongs to this architecture.')
    return new_state, converted


#: Top-level entries of a training checkpoint that describe the run of the
#: *plain* model (optimizer moments, schedules, logs, EMA copies): never
#: carried into a converted checkpoint, whose tensors differ.
TRAINING_STATE_KEYS = frozenset({
    'optimizer', 'optimizers', 'param_schedulers', 'scheduler',
    'schedulers', 'lr_scheduler', 'message_hub', 'ema_state_dict',
    'scaler', 'grad_scaler', 'amp'})


@dataclass
class ConvertedCheckpoint:
    """What :func:`convert_checkpoint` made.

    Args:
        checkpoint (dict): ``{'meta': ..., 'state_dict': ..., <kept>}``,
            readable by ``torch.load(weights_only=True)`` without mmconvplug.
        layout (CheckpointLayout): The input's layout.
        converted (list[str]): Names of the converted convs.
        kept (list[str]): Other top-level entries kept (plain data).
        dropped (list[str]): Top-level entries (and ``meta`` parts) left
            out, with why.
    """

    checkpoint: dict
    layout: CheckpointLayout
    converted: List[str]
    kept: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)

    def summary(self, variant: str) -> str:
        """One line per fact, each naming the input layout."""
        state = self.checkpoint['state_dict']
        lines = [
            f'read a {self.layout}',
            f'converted {len(self.converted)} convs to {variant} '
            f'({len(state)} tensors written under \'state_dict\', where '
            'mmengine\'s Pretrained init reads them)'
        ]
        if self.layout.holder not in (None, 'state_dict'):
            lines.append(
                f'moved the weights from \'{self.layout.holder}\' to '
                '\'state_dict\' (mmengine never reads '
                f'\'{self.layout.holder}\')')
        if self.layout.stripped_prefix:
            lines.append(
                f"stripped the DDP prefix 'module.' from "
                f'{self.layout.stripped_prefix} keys, as mmengine\'s loader '
                'does')
        if self.kept:
            lines.append(f'kept top-level entries {self.kept}')
        if self.dropped:
            lines.append(f'dropped {self.dropped}')
        return '\n'.join(lines)


def _plain_entry(value) -> bool:
    """Plain data (weights-only loadable) holding no tensor."""
    plain, dropped = to_plain_data(value)
    if dropped:
        return False
    stack = [plain]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return True


def convert_checkpoint(checkpoint,
                       variant: str,
                       model: Optional[nn.Module] = None,
                       variant_kwargs: Optional[dict] = None
                       ) -> ConvertedCheckpoint:
    """Convert a loaded plain checkpoint of any common layout.

    Reads the weights as :func:`~mmconvplug.utils.checkpoint_layout.
    read_checkpoint_layout` does (bare, ``state_dict``- or ``model``-keyed;
    a DDP ``module.`` prefix stripped, as mmengine's loader does), converts
    them with :func:`convert_state_dict` and writes them under
    ``'state_dict'``, where mmengine's ``load_checkpoint`` and the
    ``Pretrained`` init read them. ``meta`` is kept as plain data; other
    top-level entries are kept when they are plain data without tensors
    (``iteration``, a config string) and dropped, and listed, when they
    are training state of the plain model (:data:`TRAINING_STATE_KEYS`,
    anything holding tensors) or not plain data.

    Args:
        checkpoint: What ``torch.load`` returned.
        variant (str): As for :func:`convert_state_dict`.
        model (nn.Module, optional): As for :func:`convert_state_dict`.
        variant_kwargs (dict, optional): As for :func:`convert_state_dict`.

    Returns:
        ConvertedCheckpoint: the new checkpoint and what was done.

    Raises:
        ValueError: the checkpoint holds no state dict, or the conversion
            fails; the message names the layout found.
    """
    try:
        state_dict, layout = read_checkpoint_layout(checkpoint)
    except ValueError as error:
        raise ValueError(f'convert: {error}') from None
    try:
        new_state, converted = convert_state_dict(
            state_dict, variant, model=model, variant_kwargs=variant_kwargs)
    except ValueError as error:
        raise ValueError(f'{error} (input: a {layout})') from None
    meta = checkpoint.get('meta') if layout.holder is not None else None
    out, dropped_meta = plain_checkpoint(new_state, meta)
    kept, dropped = [], [f'{path} (not plain data)' for path in dropped_meta]
    if layout.holder is not None:
        for key, value in checkpoint.items():
            if key in (layout.holder, 'meta', 'state_dict'):
                if key not in (layout.holder, 'meta'):
                    dropped.append(f'{key!r} (a second state dict)')
                continue
            if key in TRAINING_STATE_KEYS:
                dropped.append(f'{key!r} (training state of the plain model)')
            elif not isinstance(key, str) or not _plain_entry(value):
                dropped.append(f'{key!r} (holds tensors or objects that are '
                               'not plain data)')
            else:
                out[key] = to_plain_data(value)[0]
                kept.append(key)
    return ConvertedCheckpoint(out, layout, converted, kept, dropped)


__getattr__ = removed_names(__name__, {
    'split_checkpoint': 'use mmconvplug.apis.read_state_dict (a file or a '
    'loaded checkpoint: .state_dict, .layout.holder), the one reader',
})
