"""Refuse a trained checkpoint in a folded model, or a folded one in a trained model.

mmengine loads checkpoints with ``strict=False``: the keys that do not match
are only logged, and the layers behind them keep their random init. With
conv variants this happens exactly when a user mixes a folded checkpoint
(``tools/fold.py``) with the training config, or the training checkpoint
with the deploy config. :func:`check_checkpoint_matches_model` detects both
cases from the key names alone and raises :class:`FoldCheckpointMismatchError`
with the fix. ``CheckpointGuardHook`` runs it in ``after_load_checkpoint``
(``tools/test.py`` adds the hook; training configs with ``load_from`` can add
it to ``custom_hooks``).
"""
import re
from typing import Dict, FrozenSet, Iterable, Mapping, Optional

from torch import nn

from mmconvplug.convs.base import (build_reference_layer, conv_variants,
                                   is_conv_variant)


class FoldCheckpointMismatchError(ValueError):
    """A checkpoint's convs are folded where the model's are not, or reverse."""


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


def state_dict_of(checkpoint: Mapping) -> Mapping:
    """The model weights of an mmengine checkpoint (or a bare state dict)."""
    state = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', key): value for key, value in state.items()}


def _enclosing(key: str, prefixes: Mapping[str, str]) -> Optional[str]:
    parts = key.split('.')
    for end in range(len(parts) - 1, 0, -1):
        prefix = '.'.join(parts[:end])
        if prefix in prefixes:
            return prefix
    return None


def check_checkpoint_matches_model(model: nn.Module,
                                   checkpoint: Mapping,
                                   source: str = 'the checkpoint') -> None:
    """Raise if ``checkpoint`` is folded where ``model`` is not, or reverse.

    Args:
        model: the (unwrapped) model the checkpoint is about to load into.
        checkpoint: an mmengine checkpoint dict or a bare state dict.
        source: how to name the checkpoint in messages (e.g. its path).
    """
    state = state_dict_of(checkpoint)
    model_keys = set(model.state_dict())
    ckpt_keys = set(state)
    plain_convs = {name: 'Conv2d' for name, module in model.named_modules()
                   if type(module) is nn.Conv2d}
    variants = {name: type(module).__name__
                for name, module in model.named_modules()
                if is_conv_variant(module)}

    # A trained (unfolded) checkpoint for a folded / stock model.
    trained_extra: Dict[str, set] = {}
    for key in ckpt_keys - model_keys:
        conv = _enclosing(key, plain_convs)
        if conv is not None:
            trained_extra.setdefault(conv, set()).add(key[len(conv) + 1:])
    if trained_extra:
        conv, keys = sorted(trained_extra.items())[0]
        variant = _guess_variant(
            k[len(conv) + 1:] for k in ckpt_keys if k.startswith(conv + '.'))
        what = f'{variant} layers' if variant else 'conv variant layers'
        raise FoldCheckpointMismatchError(
            f'{source} was trained with {what} but the model has plain convs '
            f"there (e.g. checkpoint key '{conv}.{sorted(keys)[0]}' has no "
            f'place in the model, whose {conv} is an nn.Conv2d; '
            f'{len(trained_extra)} conv(s) affected). Loading it would leave '
            'those convs with random weights. Fix: fold it with '
            '`python tools/fold.py TRAIN_CONFIG CHECKPOINT OUT.pth` and test '
            'OUT.pth with the deploy config OUT.py, or test this checkpoint '
            'with the training config.')

    # A folded checkpoint for a model that still builds the variants. Not
    # for layers a conv_swap put in: they start as exactly the plain conv
    # they replaced, so a plain checkpoint (stock, plain-trained or folded)
    # loads into them as into the plain model (mmconvplug.swap).
    from mmconvplug.swap import swapped_layer_names
    swapped = {name for name in swapped_layer_names(model)
               if f'{name}.weight' in ckpt_keys}
    folded_missing: Dict[str, set] = {}
    for key in model_keys - ckpt_keys:
        layer = _enclosing(key, variants)
        if layer is not None and layer not in swapped:
            folded_missing.setdefault(layer, set()).add(key[len(layer) + 1:])
    if folded_missing:
        layer, keys = sorted(folded_missing.items())[0]
        looks_folded = f'{layer}.weight' in ckpt_keys
        found = ('plain (folded) conv weights' if looks_folded else
                 'no weights')
        raise FoldCheckpointMismatchError(
            f'{source} has {found} where the model builds a '
            f'{variants[layer]} layer (e.g. model key '
            f"'{layer}.{sorted(keys)[0]}' is missing from the checkpoint; "
            f'{len(folded_missing)} layer(s) affected). '
            + ('It was written by tools/fold.py: test it with the deploy '
               'config written next to it (same name, .py) or the stock '
               'config, or test the unfolded training checkpoint with this '
               'config.' if looks_folded else
               'Use the checkpoint trained with this config.'))
