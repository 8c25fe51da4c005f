"""Does a checkpoint fit the model? The one check, before anything loads.

mmengine loads ``init_cfg=dict(type='Pretrained', ...)`` and ``load_from``
non-strictly: a tensor the checkpoint does not provide keeps its random
init, a checkpoint tensor the model has no place for is dropped, and a
tensor of the wrong shape is skipped, each with at most a warning among
many. Given a pretrained SCNet-101 for an SCNet-50, a ResNet-50 for a
ResNetV1c, a folded checkpoint for the training config or a trained one for
the deploy config, the model is partly random and nothing stops it.

:func:`find_incompatible_keys` compares a state dict with a model, once,
and sorts the differences into

* ``missing``: model tensors the checkpoint does not provide, except
  ``num_batches_tracked`` (a counter, absent from torchvision and most
  published checkpoints) and a conv variant's own new tensors
  (``new_tensor_names()`` of the layer: DO-Conv's ``D_delta``, RefConv's
  refocusing weights, CondConv's routing and extra experts), which a plain
  checkpoint cannot hold and which keep their own init (the
  exact-equivalence one by default; RefConv's paper configs choose the
  official random map);
* ``unexpected``: checkpoint tensors the model does not consume, except an
  ImageNet classifier the detector has no place for (``fc.*``,
  ``classifier.*``; :data:`IMAGENET_CLASSIFIER_KEYS`);
* ``size_mismatch``: tensors present on both sides with different shapes;
* a fold mix-up: variant tensors for convs the model has plain (a trained
  checkpoint for a folded or stock model), or plain kernels where the model
  builds a variant that is not a ``conv_swap`` layer (a ``tools/fold.py``
  checkpoint for the training model).

Three checks read it:

* :func:`check_checkpoint_matches_model` raises
  :class:`FoldCheckpointMismatchError` for a fold mix-up, with the fix;
* :func:`check_checkpoint_keys` reports missing / unused / misshapen
  tensors by name in one message (keys grouped into the smallest fully
  unmatched modules, e.g. ``layer3.6.*``) with the likely cause, as a
  warning, or raises :class:`IncompatibleKeysError` when ``strict``;
* :func:`check_checkpoint_fit` does both, in that order: what a whole-model
  load (``load_from``, ``resume``, :func:`mmconvplug.apis.init_model`)
  needs.

Strictness is an argument, never process state: ``strict`` of these
functions, of the ``Pretrained`` initializer
(:mod:`mmconvplug.engine.pretrained_init`: ``init_cfg=dict(type=
'Pretrained', ..., strict=True)``) and of
:class:`~mmconvplug.engine.hooks.CheckpointFitHook`, which checks
``load_from`` / ``resume`` and, with ``strict=True`` (the paper configs),
hands ``strict=True`` to the model's own ``Pretrained`` inits
(:func:`strict_pretrained_inits`).
"""
import fnmatch
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import (
    Any,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

import torch
from mmengine.logging import print_log
from torch import nn

from mmconvplug.convs.base import (
    build_reference_layer,
    conv_variants,
    is_conv_variant,
)
from mmconvplug.swap import swapped_layer_names
from mmconvplug.utils.checkpoint_layout import (
    DDP_PREFIX,
    MMENGINE_STATE_DICT_KEYS,
    read_checkpoint_layout,
)

#: Checkpoint keys of an ImageNet classifier: dropped without a report when
#: the model has no such layer (torchvision / official SCNet ``fc``,
#: torchvision VGG / MobileNet ``classifier``).
IMAGENET_CLASSIFIER_KEYS = ('fc.*', 'classifier.*')

#: How many grouped names a message lists before "... and N more".
MAX_LISTED = 40



class IncompatibleKeysError(RuntimeError):
    """A checkpoint does not fit the model; raised only in strict mode."""


class FoldCheckpointMismatchError(ValueError):
    """A checkpoint's convs are folded where the model's are not (or the
    reverse)."""


@dataclass
class IncompatibleKeys:
    """The differences between a checkpoint and a model, by key.

    Args:
        missing (list[str]): Model keys the checkpoint does not provide
            (reported).
        unexpected (list[str]): Checkpoint keys the model does not have
            (reported).
        size_mismatch (list[tuple]): ``(key, checkpoint shape, model
            shape)`` of keys on both sides with different shapes
            (reported).
        new_tensors (list[str]): Missing keys that are conv variants' own
            new tensors (not reported).
        variant_size_mismatch (list[str]): The keys of ``size_mismatch``
            that are conv variants' new tensors (a plain kernel given to a
            layer that stores another shape, e.g. CondConv's experts).
        classifier (list[str]): Unexpected keys of an ImageNet classifier
            (not reported).
        model_keys (list[str]): The model keys a checkpoint is expected to
            provide (all but ``num_batches_tracked`` and variants' new
            tensors; for grouping and cause-finding).
        checkpoint_keys (list[str]): Every key of the checkpoint.
        trained_into_plain (dict): ``{conv name: checkpoint keys}``: plain
            ``nn.Conv2d`` layers of the model for which the checkpoint holds
            tensors a plain conv does not have (a variant's).
        folded_into_variant (dict): ``{layer name: model keys}``: conv
            variant layers (not put in by a ``conv_swap``) for which the
            checkpoint holds a plain kernel (``<layer>.weight``) but not
            all of the layer's tensors.
        whole_model_missing (list[str]): Variants' new tensors the
            checkpoint lacks in layers not put in by a ``conv_swap``: a
            whole-model checkpoint (``load_from``, ``resume``) must provide
            them (:func:`check_checkpoint_fit` reports them as missing).
        layer_types (dict): ``{layer name: type name}`` of the layers named
            in the two above.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    size_mismatch: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    new_tensors: List[str] = field(default_factory=list)
    variant_size_mismatch: List[str] = field(default_factory=list)
    classifier: List[str] = field(default_factory=list)
    model_keys: List[str] = field(default_factory=list, repr=False)
    checkpoint_keys: List[str] = field(default_factory=list, repr=False)
    trained_into_plain: Dict[str, Set[str]] = field(default_factory=dict)
    folded_into_variant: Dict[str, Set[str]] = field(default_factory=dict)
    whole_model_missing: List[str] = field(default_factory=list)
    layer_types: Dict[str, str] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        """True when something must be reported."""
        return bool(self.missing or self.unexpected or self.size_mismatch)

    def message(self,
                source: str = 'the checkpoint',
                model_name: str = 'the model') -> str:
        """One human-readable report: what, which keys, the likely cause."""
        lines = [
            f'{source} does not fit {model_name}: loading it non-strictly '
            'would leave the model partly at its random init.'
        ]
        if self.missing:
            lines.append(
                f'  {len(self.missing)} model tensor(s) missing from the '
                'checkpoint (they would keep their random init): ' +
                _listing(group_keys(self.missing, self.model_keys)))
        if self.unexpected:
            lines.append(
                f'  {len(self.unexpected)} checkpoint tensor(s) the model '
                'has no place for (they would be dropped): ' +
                _listing(group_keys(self.unexpected, self.checkpoint_keys)))
        if self.size_mismatch:
            lines.append(
                f'  {len(self.size_mismatch)} tensor(s) of another shape '
                '(they would be skipped): ' + _listing([
                    f'{key} {tuple(ckpt)} in the checkpoint, {tuple(model)} '
                    'in the model' for key, ckpt, model in self.size_mismatch
                ]))
        lines.append('  Likely cause: ' + self.likely_cause())
        return '\n'.join(lines)

    def likely_cause(self) -> str:
        """A guess at why the checkpoint does not fit, with the fix."""
        ckpt_keys = set(self.checkpoint_keys)
        model_tops = {k.split('.', 1)[0] for k in self.model_keys}
        tops = Counter(k.split('.', 1)[0] for k in self.unexpected)
        for prefix, _ in tops.most_common():
            covered = sum(f'{prefix}.{k}' in ckpt_keys for k in self.missing)
            if (prefix not in model_tops and self.missing
                    and 2 * covered >= len(self.missing)):
                nested = '' if prefix == 'backbone' else (
                    f" (followed by the part's name if it is nested, e.g. "
                    f"'{prefix}.backbone.')")
                return (f"the model's tensors are in the checkpoint under "
                        f"'{prefix}.': it holds a whole model. Load only the "
                        "part this module is with init_cfg=dict(type="
                        f"'Pretrained', checkpoint=..., prefix='{prefix}.')"
                        f'{nested}.')
        deeper = _extra_blocks(self.unexpected, self.model_keys)
        shallower = _extra_blocks(self.missing, self.checkpoint_keys)
        if deeper and not self.missing:
            return (f'the checkpoint has blocks the model does not '
                    f'({", ".join(deeper)}): it is of a deeper network '
                    '(e.g. SCNet-101 / ResNet-101 weights for a depth-50 '
                    'model). Use the checkpoint of the depth the config '
                    'builds, or set the backbone depth to the '
                    "checkpoint's.")
        if shallower and not self.unexpected:
            return (f'the model has blocks the checkpoint does not '
                    f'({", ".join(shallower)}): it is of a shallower '
                    'network. Use the checkpoint of the depth the config '
                    'builds.')
        if self.variant_size_mismatch:
            return (f'plain conv tensors for conv variant layers that store '
                    f'another shape (e.g. {self.variant_size_mismatch[0]}, '
                    "CondConv's expert stack): convert the plain checkpoint "
                    'first, tools/convert_pretrained.py IN OUT --variant '
                    'VARIANT --config THIS_CONFIG, and point the init at '
                    'OUT.')
        if self.size_mismatch and not (self.missing or self.unexpected):
            return ('same layers, other widths or class counts: the '
                    'checkpoint was trained with other channel numbers '
                    '(or another number of classes, for a whole-model '
                    'load_from); check depth/width/num_classes.')
        if self.missing and self.unexpected:
            return ('the layer names differ: the checkpoint was made for '
                    'another layout of this network (e.g. a deep 3x3 stem '
                    '(v1c/v1d: stem.*, conv1.0.*) against a 7x7 one '
                    '(conv1.weight), or another backbone type). Pick the '
                    "backbone type whose layout is the checkpoint's, or "
                    'convert the checkpoint.')
        if self.missing:
            return ('the checkpoint provides only part of the model. If '
                    'the missing tensors are conv variant layers, convert '
                    'the plain checkpoint with tools/convert_pretrained.py; '
                    'otherwise use the checkpoint trained with this model.')
        return ('the checkpoint has layers this model does not build: it '
                'was trained with another architecture or configuration.')


def _listing(names: Sequence[str]) -> str:
    shown = ', '.join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        shown += f', ... and {len(names) - MAX_LISTED} more'
    return shown


def _natural_key(name: str) -> list:
    return [(0, int(part), '') if part.isdigit() else (1, 0, part)
            for part in name.replace('*', '').split('.')]


def group_keys(keys: Iterable[str], universe: Iterable[str]) -> List[str]:
    """Collapse ``keys`` into the largest modules that are wholly in them.

    A module prefix all of whose keys in ``universe`` are among ``keys``
    stands for them as ``prefix.*``: the 17 blocks of SCNet-101's
    ``layer3.6`` to ``layer3.22`` become ``layer3.6.*, ..., layer3.22.*``
    instead of 500 names.

    Args:
        keys (Iterable[str]): The keys to name.
        universe (Iterable[str]): All keys of the side ``keys`` come from.

    Returns:
        list[str]: Names in natural order (``layer3.10`` after ``layer3.9``).
    """
    keys = set(keys)
    total, hit = Counter(), Counter()
    for counter, names in ((total, set(universe) | keys), (hit, keys)):
        for name in names:
            parts = name.split('.')
            for end in range(1, len(parts)):
                counter['.'.join(parts[:end])] += 1
    grouped = set()
    for name in keys:
        parts = name.split('.')
        label = name
        for end in range(1, len(parts)):
            prefix = '.'.join(parts[:end])
            if hit[prefix] == total[prefix] > 1:
                label = prefix + '.*'
                break
        grouped.add(label)
    return sorted(grouped, key=_natural_key)


def _block_of(key: str) -> Optional[Tuple[str, int]]:
    """``(stage, index)`` of the first numbered module in ``key``
    (``layer3.6.conv1.weight`` -> ``('layer3', 6)``), or None."""
    parts = key.split('.')
    for position, part in enumerate(parts[:-1]):
        if part.isdigit() and position > 0:
            return '.'.join(parts[:position]), int(part)
    return None


def _extra_blocks(keys: Sequence[str], other_side: Iterable[str]) -> List[str]:
    """Blocks (``stage.index``) in ``keys`` past the last block the other
    side has in the same stage: a depth difference."""
    last: Dict[str, int] = {}
    for key in other_side:
        block = _block_of(key)
        if block is not None:
            last[block[0]] = max(last.get(block[0], -1), block[1])
    extra = set()
    for key in keys:
        block = _block_of(key)
        if block is not None and block[0] in last and block[1] > last[
                block[0]]:
            extra.add(f'{block[0]}.{block[1]}')
    return sorted(extra, key=_natural_key)


def new_tensor_keys(model: nn.Module) -> Dict[str, str]:
    """``{state-dict key: layer type}`` of every conv variant's new tensors.

    These are the keys a plain conv checkpoint cannot provide
    (``new_tensor_names()`` of each variant layer, prefixed by the layer's
    name), so their absence from a checkpoint is expected.
    """
    keys = {}
    for name, module in model.named_modules():
        if is_conv_variant(module):
            prefix = f'{name}.' if name else ''
            for tensor in module.new_tensor_names():
                keys[prefix + tensor] = type(module).__name__
    return keys


def find_incompatible_keys(
    model: nn.Module,
    state_dict: Mapping,
    ignore_unexpected: Sequence[str] = IMAGENET_CLASSIFIER_KEYS
) -> IncompatibleKeys:
    """Compare ``state_dict`` with ``model`` before loading it.

    Args:
        model (nn.Module): The (unwrapped) module the state dict goes into;
            keys are relative to it.
        state_dict (Mapping): The checkpoint's tensors (after any prefix or
            key revision the loader applies: :func:`checkpoint_state_dict`).
        ignore_unexpected (Sequence[str]): fnmatch patterns of checkpoint
            keys the model may leave unused without a report. Defaults to
            :data:`IMAGENET_CLASSIFIER_KEYS`.

    Returns:
        IncompatibleKeys: True (``bool``) when keys must be reported; its
        ``trained_into_plain`` / ``folded_into_variant`` name a fold
        mix-up.
    """
    model_state = model.state_dict()
    new_tensors = new_tensor_keys(model)
    result = IncompatibleKeys(
        # The keys a checkpoint is expected to provide (for grouping).
        model_keys=[
            k for k in model_state
            if k not in new_tensors and not k.endswith('num_batches_tracked')
        ],
        checkpoint_keys=list(state_dict))
    for key, tensor in model_state.items():
        if key not in state_dict:
            if key.endswith('num_batches_tracked'):
                continue
            if key in new_tensors:
                result.new_tensors.append(key)
            else:
                result.missing.append(key)
            continue
        theirs = state_dict[key]
        shape = tuple(getattr(theirs, 'shape', ()))
        if hasattr(theirs, 'shape') and shape != tuple(tensor.shape):
            # Even a variant's new tensor: a plain kernel where CondConv
            # keeps its expert stack needs converting, not skipping.
            result.size_mismatch.append((key, shape, tuple(tensor.shape)))
            if key in new_tensors:
                result.variant_size_mismatch.append(key)
    for key in state_dict:
        if key in model_state:
            continue
        if any(fnmatch.fnmatchcase(key, p) for p in ignore_unexpected):
            result.classifier.append(key)
        else:
            result.unexpected.append(key)
    _find_fold_mix_up(model, model_state, state_dict, result)
    return result


def _enclosing(key: str, prefixes: Mapping[str, str]) -> Optional[str]:
    """The longest of ``prefixes`` that names a module holding ``key``."""
    parts = key.split('.')
    for end in range(len(parts) - 1, 0, -1):
        prefix = '.'.join(parts[:end])
        if prefix in prefixes:
            return prefix
    return None


def _find_fold_mix_up(model: nn.Module, model_state: Mapping,
                      state_dict: Mapping, result: IncompatibleKeys) -> None:
    """Fill ``result``'s ``trained_into_plain`` / ``folded_into_variant``."""
    plain_convs = {name: 'Conv2d' for name, module in model.named_modules()
                   if type(module) is nn.Conv2d}
    variants = {name: type(module).__name__
                for name, module in model.named_modules()
                if is_conv_variant(module)}
    # A trained (unfolded) checkpoint for a folded / stock model.
    for key in set(state_dict) - set(model_state):
        conv = _enclosing(key, plain_convs)
        if conv is not None:
            result.trained_into_plain.setdefault(conv, set()).add(key)
            result.layer_types[conv] = 'Conv2d'
    # A folded checkpoint for a model that still builds the variants. Not
    # for layers a conv_swap put in: they start as exactly the plain conv
    # they replaced, so a plain checkpoint (stock, plain-trained or folded)
    # loads into them as into the plain model (mmconvplug.swap).
    swapped = {name for name in swapped_layer_names(model)
               if f'{name}.weight' in state_dict}
    new_tensors = set(result.new_tensors)
    for key in sorted(set(model_state) - set(state_dict)):
        layer = _enclosing(key, variants)
        if layer is None or layer in swapped:
            continue
        if f'{layer}.weight' in state_dict:
            result.folded_into_variant.setdefault(layer, set()).add(key)
            result.layer_types[layer] = variants[layer]
        elif key in new_tensors:
            result.whole_model_missing.append(key)


def variant_key_signatures() -> Dict[str, FrozenSet[str]]:
    """State-dict key names (relative to the layer) of each conv variant.

    Each registered variant is built at the contract's reference geometry
    (:func:`~mmconvplug.convs.base.build_reference_layer`); one that does not
    build there breaks the contract and raises
    :class:`~mmconvplug.convs.base.ConvVariantContractError`.
    """
    return {
        name: frozenset(build_reference_layer(cls).state_dict())
        for name, cls in conv_variants().items()
    }


def _guess_variant(relative_keys: Iterable[str]) -> Optional[str]:
    keys = frozenset(relative_keys)
    plain = {'weight', 'bias'}
    for name, signature in sorted(variant_key_signatures().items()):
        if keys | plain == signature | plain or keys == signature:
            return name
    return None


def fold_mix_up_message(found: IncompatibleKeys,
                        source: str = 'the checkpoint') -> Optional[str]:
    """What is folded where it should not be, and the fix; None when the
    checkpoint and the model agree on which convs are folded."""
    if found.trained_into_plain:
        conv, keys = sorted(found.trained_into_plain.items())[0]
        variant = _guess_variant(
            k[len(conv) + 1:] for k in found.checkpoint_keys
            if k.startswith(conv + '.'))
        what = f'{variant} layers' if variant else 'conv variant layers'
        return (
            f'{source} was trained with {what} but the model has plain convs '
            f"there (e.g. checkpoint key '{sorted(keys)[0]}' has no "
            f'place in the model, whose {conv} is an nn.Conv2d; '
            f'{len(found.trained_into_plain)} conv(s) affected). Loading it '
            'would leave those convs with random weights. Fix: fold it with '
            '`python tools/fold.py TRAIN_CONFIG CHECKPOINT OUT.pth` and test '
            'OUT.pth with the deploy config OUT.py, or test this checkpoint '
            'with the training config.')
    if found.folded_into_variant:
        layer, keys = sorted(found.folded_into_variant.items())[0]
        return (
            f'{source} has plain (folded) conv weights where the model '
            f'builds a {found.layer_types[layer]} layer (e.g. model key '
            f"'{sorted(keys)[0]}' is missing from the checkpoint; "
            f'{len(found.folded_into_variant)} layer(s) affected). It was '
            'written by tools/fold.py: test it with the deploy config '
            'written next to it (same name, .py) or the stock config, or '
            'test the unfolded training checkpoint with this config.')
    return None


def checkpoint_state_dict(checkpoint: Any) -> Mapping:
    """The model tensors of a loaded checkpoint, keyed as mmengine's
    ``load_checkpoint`` / ``Runner.load_checkpoint`` put them into the model:
    ``state_dict`` unwrapped and a DDP ``module.`` prefix removed (the one
    reader, :func:`~mmconvplug.utils.checkpoint_layout.
    read_checkpoint_layout`, reading where mmengine reads). A checkpoint
    without a state dict there (weights under ``'model'``, no tensors)
    gives the tensors mmengine would try, which fit nothing.
    """
    try:
        state_dict, _ = read_checkpoint_layout(checkpoint,
                                               MMENGINE_STATE_DICT_KEYS)
    except ValueError:
        if not isinstance(checkpoint, Mapping):
            return {}
        state = checkpoint.get('state_dict', checkpoint)
        state_dict = {DDP_PREFIX.sub('', key): value
                      for key, value in state.items()
                      if isinstance(value, torch.Tensor)}
    return state_dict


def _unreadable(checkpoint: Any, source: str, error: ValueError) -> str:
    holder = 'model' if (isinstance(checkpoint, Mapping)
                         and 'model' in checkpoint) else None
    fix = (f"its weights are under '{holder}', where mmengine never looks: "
           'rewrite it with tools/convert_pretrained.py (which reads that '
           "layout) or re-save the weights under 'state_dict'."
           if holder else 'it would load nothing into the model.')
    return f'{source}: {error} mmengine reads {fix}'


def strict_pretrained_inits(model: nn.Module, strict: bool = True) -> int:
    """Hand ``strict`` to the ``Pretrained`` inits of ``model``'s modules.

    Sets ``strict`` in every ``init_cfg=dict(type='Pretrained', ...)`` of
    ``model`` and its sub-modules that does not set it itself, so the next
    ``model.init_weights()`` (the Runner's, right after ``before_run``)
    checks those loads with that strictness. What
    ``CheckpointFitHook(strict=True)`` does in ``before_run``.

    Returns:
        int: How many inits were given ``strict``.
    """
    count = 0
    for module in model.modules():
        init_cfg = getattr(module, 'init_cfg', None)
        inits = init_cfg if isinstance(init_cfg, list) else [init_cfg]
        for init in inits:
            if (isinstance(init, dict) and init.get('type') == 'Pretrained'
                    and 'strict' not in init):
                init['strict'] = bool(strict)
                count += 1
    return count


def _read_state(checkpoint: Any, source: str) -> Tuple[Mapping, str]:
    """The tensors mmengine would load, and a note when it finds no state
    dict where it looks."""
    try:
        state_dict, _ = read_checkpoint_layout(checkpoint,
                                               MMENGINE_STATE_DICT_KEYS)
    except ValueError as error:
        return checkpoint_state_dict(checkpoint), _unreadable(
            checkpoint, source, error)
    return state_dict, ''


#: Appended to a strict refusal.
STRICT_NOTE = (
    '\n  (strict=True: nothing was loaded. The paper configs set it with '
    "default_hooks.checkpoint_fit=dict(type='CheckpointFitHook', "
    'strict=True); to load anyway, with this report as a warning, set '
    "default_hooks.checkpoint_fit.strict=False (or strict=False in the "
    "init_cfg's Pretrained).)")


def check_checkpoint_fit(
        model: nn.Module,
        checkpoint: Any,
        source: str = 'the checkpoint',
        strict: bool = False,
        ignore_unexpected: Sequence[str] = IMAGENET_CLASSIFIER_KEYS,
        logger: str = 'current',
        whole_model: bool = True) -> IncompatibleKeys:
    """Report, or refuse, a checkpoint that does not fit ``model``.

    Call it before loading: nothing is loaded half. With ``whole_model``
    (``load_from``, ``resume``, :func:`mmconvplug.apis.init_model`) a fold
    mix-up always raises, and the variants' own tensors must be there too
    (except in layers a ``conv_swap`` put in); without it (a ``Pretrained``
    init: :func:`check_checkpoint_keys`) a variant's own new tensors may be
    missing, as from a plain published checkpoint.

    Args:
        model (nn.Module): The module the checkpoint is for.
        checkpoint: A loaded checkpoint or a state dict (keys relative to
            ``model``), read as mmengine reads it
            (:func:`checkpoint_state_dict`).
        source (str): How to name the checkpoint (its path or URL).
            Defaults to ``'the checkpoint'``.
        strict (bool): Raise instead of warning when tensors are missing,
            unused or of another shape. Defaults to False.
        ignore_unexpected (Sequence[str]): See
            :func:`find_incompatible_keys`.
        logger (str): mmengine logger for the warning. Defaults to
            ``'current'``.
        whole_model (bool): See above. Defaults to True.

    Returns:
        IncompatibleKeys: What was found (empty when the load is exact up
        to variants' new tensors and an ImageNet classifier).

    Raises:
        FoldCheckpointMismatchError: ``whole_model`` and a folded
            checkpoint for a model that builds the variants, or the reverse.
        IncompatibleKeysError: In strict mode, when anything is reported;
            the message names the keys and the likely cause.
    """
    state, note = _read_state(checkpoint, source)
    found = find_incompatible_keys(model, state, ignore_unexpected)
    if whole_model:
        message = fold_mix_up_message(found, source)
        if message:
            raise FoldCheckpointMismatchError(message)
        found.missing += found.whole_model_missing
        found.model_keys += found.whole_model_missing
    if not found:
        return found
    message = found.message(source, type(model).__name__)
    if note:
        message = f'{note}\n{message}'
    if strict:
        raise IncompatibleKeysError(message + STRICT_NOTE)
    print_log(message, logger=logger, level=logging.WARNING)
    return found


def check_checkpoint_keys(model: nn.Module, checkpoint: Any,
                          **kwargs) -> IncompatibleKeys:
    """:func:`check_checkpoint_fit` for part of a model (a ``Pretrained``
    init): missing, unused or misshapen tensors only (``whole_model=False``;
    same other arguments)."""
    return check_checkpoint_fit(model, checkpoint, whole_model=False,
                                **kwargs)


def check_checkpoint_matches_model(model: nn.Module,
                                   checkpoint: Any,
                                   source: str = 'the checkpoint') -> None:
    """Raise if ``checkpoint`` is folded where ``model`` is not, or reverse
    (the first check of :func:`check_checkpoint_fit`, alone).

    Args:
        model: the (unwrapped) model the checkpoint is about to load into.
        checkpoint: an mmengine checkpoint dict or a bare state dict.
        source: how to name the checkpoint in messages (e.g. its path).

    Raises:
        FoldCheckpointMismatchError: naming a layer, the cause and the fix.
    """
    state, _ = _read_state(checkpoint, source)
    message = fold_mix_up_message(find_incompatible_keys(model, state), source)
    if message:
        raise FoldCheckpointMismatchError(message)
