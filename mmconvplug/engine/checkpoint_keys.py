"""Name every tensor a checkpoint load leaves unfilled or unused.

mmengine loads ``init_cfg=dict(type='Pretrained', ...)`` and ``load_from``
non-strictly: a tensor the checkpoint does not provide keeps its random
init, a checkpoint tensor the model has no place for is dropped, and a
tensor of the wrong shape is skipped, each with at most a warning among
many. Given a pretrained SCNet-101 for an SCNet-50, or a ResNet-50 for a
ResNetV1c, training starts from a model that is partly random and nothing
stops it.

:func:`find_incompatible_keys` compares a state dict with a model before
loading and sorts the differences into

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
* ``size_mismatch``: tensors present on both sides with different shapes.

:func:`check_checkpoint_keys` reports them by name in one message (keys
grouped into the smallest fully unmatched modules, e.g. ``layer3.6.*``)
with the likely cause, as a warning, or raises
:class:`IncompatibleKeysError` when ``strict``. The ``Pretrained``
initializer of :mod:`mmconvplug.engine.pretrained_init` and
``CheckpointKeysHook`` (``load_from``/``resume``) call it; the hook's
``strict=True`` is the one switch that makes both an error.
"""
import contextlib
import fnmatch
import logging
import re
import weakref
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import (Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from mmengine.logging import print_log
from torch import nn

#: Checkpoint keys of an ImageNet classifier: dropped without a report when
#: the model has no such layer (torchvision / official SCNet ``fc``,
#: torchvision VGG / MobileNet ``classifier``).
IMAGENET_CLASSIFIER_KEYS = ('fc.*', 'classifier.*')

#: How many grouped names a message lists before "... and N more".
MAX_LISTED = 40

_STRICT = False
_STRICT_MODELS: 'weakref.WeakSet[nn.Module]' = weakref.WeakSet()


class IncompatibleKeysError(RuntimeError):
    """A checkpoint does not fit the model; raised only in strict mode."""


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
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    size_mismatch: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    new_tensors: List[str] = field(default_factory=list)
    variant_size_mismatch: List[str] = field(default_factory=list)
    classifier: List[str] = field(default_factory=list)
    model_keys: List[str] = field(default_factory=list, repr=False)
    checkpoint_keys: List[str] = field(default_factory=list, repr=False)

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
    from mmconvplug.convs.base import is_conv_variant
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
            key revision the loader applies).
        ignore_unexpected (Sequence[str]): fnmatch patterns of checkpoint
            keys the model may leave unused without a report. Defaults to
            :data:`IMAGENET_CLASSIFIER_KEYS`.

    Returns:
        IncompatibleKeys: True (``bool``) when something must be reported.
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
    return result


def checkpoint_state_dict(checkpoint: Mapping) -> OrderedDict:
    """The model tensors of a loaded checkpoint, keyed as mmengine's
    ``load_checkpoint`` / ``Runner.load_checkpoint`` put them into the model:
    ``state_dict`` unwrapped and a DDP ``module.`` prefix removed."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    metadata = getattr(state_dict, '_metadata', OrderedDict())
    revised = OrderedDict((re.sub(r'^module\.', '', key), value)
                          for key, value in state_dict.items())
    revised._metadata = metadata
    return revised


def strict_checkpoint_keys(module: Optional[nn.Module] = None) -> bool:
    """Whether :func:`check_checkpoint_keys` raises by default for
    ``module``: the process-wide default, or ``module`` is (part of) a model
    a strict ``CheckpointKeysHook`` runs (:func:`mark_strict_model`)."""
    if _STRICT:
        return True
    if module is None:
        return False
    return any(module is root or any(module is sub for sub in root.modules())
               for root in list(_STRICT_MODELS))


def set_strict_checkpoint_keys(strict: bool) -> bool:
    """Set the process-wide default of :func:`check_checkpoint_keys`;
    returns the old one."""
    global _STRICT
    previous, _STRICT = _STRICT, bool(strict)
    return previous


def mark_strict_model(model: nn.Module, strict: bool = True) -> None:
    """Make key checks of ``model`` and its sub-modules strict (or not).

    ``CheckpointKeysHook(strict=True)`` marks the runner's model for the
    time its weights are initialised; held weakly, so a run that stops on
    an error leaves nothing behind once its model is gone.
    """
    if strict:
        _STRICT_MODELS.add(model)
    else:
        _STRICT_MODELS.discard(model)


@contextlib.contextmanager
def checkpoint_keys_strictness(strict: bool) -> Iterator[None]:
    """Context manager form of :func:`set_strict_checkpoint_keys`.

    Example:
        >>> from mmengine.model import BaseModule
        >>> model = BaseModule()
        >>> with checkpoint_keys_strictness(True):
        ...     model.init_weights()  # a partial Pretrained load raises
    """
    previous = set_strict_checkpoint_keys(strict)
    try:
        yield
    finally:
        set_strict_checkpoint_keys(previous)


def check_checkpoint_keys(
        model: nn.Module,
        state_dict: Mapping,
        source: str = 'the checkpoint',
        strict: Optional[bool] = None,
        ignore_unexpected: Sequence[str] = IMAGENET_CLASSIFIER_KEYS,
        logger: str = 'current') -> IncompatibleKeys:
    """Report, or refuse, a state dict that does not fit ``model``.

    Call it before loading: in strict mode nothing is loaded half.

    Args:
        model (nn.Module): The module the state dict is for.
        state_dict (Mapping): The tensors to load (keys relative to
            ``model``).
        source (str): How to name the checkpoint (its path or URL).
            Defaults to ``'the checkpoint'``.
        strict (bool, optional): Raise instead of warning. ``None`` uses
            the current default for ``model``
            (:func:`strict_checkpoint_keys`). Defaults to None.
        ignore_unexpected (Sequence[str]): See
            :func:`find_incompatible_keys`.
        logger (str): mmengine logger for the warning. Defaults to
            ``'current'``.

    Returns:
        IncompatibleKeys: What was found (empty when the load is exact up
        to variants' new tensors and an ImageNet classifier).

    Raises:
        IncompatibleKeysError: In strict mode, when anything is reported;
            the message names the keys and the likely cause.
    """
    found = find_incompatible_keys(model, state_dict, ignore_unexpected)
    if not found:
        return found
    if strict is None:
        strict = strict_checkpoint_keys(model)
    message = found.message(source, type(model).__name__)
    if strict:
        raise IncompatibleKeysError(
            message + '\n  (Strict checkpoint keys, as set by '
            'CheckpointKeysHook(strict=True) in the default_hooks of the '
            'paper configs: nothing was loaded. To load anyway, with the '
            'report as a warning, set default_hooks.checkpoint_keys.strict='
            'False.)')
    print_log(message, logger=logger, level=logging.WARNING)
    return found
