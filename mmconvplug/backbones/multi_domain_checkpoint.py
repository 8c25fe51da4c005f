"""Official multi-domain ResNet-26 state dicts -> ``MultiDomainResNet26``.

The official code of Guo et al. (AAAI 2019,
github.com/yunhuiguo/Depthwise_Convolution_for_Multiple_Domain_Learning,
``models/resnet.py`` ``FlatResNet26``, ``models/base.py``; the sharing
variant ``models/resnet_sharing.py`` / ``models/base_sharing.py``) names its
tensors::

    conv1.depthwise.{d}.weight, conv1.pointwise.weight     stem separable
    conv1.action_network.fc{1,2}.{weight,bias}             (sharing) gate
    pre_bn.{d}.*                                           stem BN
    blocks.{s}.{b}.SeparableConv2d{1,2}.<as conv1>          block convs
    blocks.{s}.{b}.bns{1,2}.{d}.*                          block BNs
    bns.{d}.0.*                                            final BN (+ ReLU)
    fcs.{d}.{weight,bias}                                  per-domain FCs

(``ds.{s}``, the ``DownsampleB`` shortcuts, hold no tensor.)
:func:`convert_official_state_dict` renames them to the keys of
``MultiDomainResNet26(arch='official')``: ``stem.0`` / ``stem.1.norms.{d}``,
``stages.{s}.{b}.conv{1,2}`` / ``bn{1,2}.norms.{d}``,
``final_norm.norms.{d}``, the gate's ``fc1`` / ``fc2`` to ``gate.0`` /
``gate.2``. Every official tensor maps to exactly one of ours, so the result
loads ``strict=True``; the FC heads are classification heads (one per
Visual Decathlon domain), not part of a backbone, and are dropped with a
message. Official checkpoints from PyTorch < 0.4 have no
``num_batches_tracked``; torch's BN loading fills it in.

Which model: ``MultiDomainResNet26(num_domains=N)`` for a ``FlatResNet26``
with N domains; the sharing network (10 domains' depthwise kernels mixed by
a gate, one BN per layer for the target domain) is
``MultiDomainResNet26(num_domains=10, gate=True,
norm_cfg=dict(type='DomainBN', num_domains=1))``.
``MultiDomainResNet26.load_state_dict`` (and mmengine's ``load_checkpoint``
/ ``Pretrained`` init) apply the conversion itself when it meets the
official layout (:func:`convert_official_in_place`).
"""
import re
from collections import OrderedDict
from typing import List, Mapping, MutableMapping, Tuple

from mmengine.logging import print_log
from torch import nn

from ..convs.dws_conv import DWSConv

#: Official key prefix -> ours (regex, replacement, what it holds).
_PREFIX_RULES = (
    (re.compile(r'^conv1\.'), 'stem.0.', 'conv'),
    (re.compile(r'^pre_bn\.(\d+)\.'), r'stem.1.norms.\1.', 'bn'),
    (re.compile(r'^blocks\.(\d+)\.(\d+)\.SeparableConv2d([12])\.'),
     r'stages.\1.\2.conv\3.', 'conv'),
    (re.compile(r'^blocks\.(\d+)\.(\d+)\.bns([12])\.(\d+)\.'),
     r'stages.\1.\2.bn\3.norms.\4.', 'bn'),
    (re.compile(r'^bns\.(\d+)\.0\.'), r'final_norm.norms.\1.', 'bn'),
)
#: The tensors of an official ``SeparableConv2d`` (``bias=False``
#: everywhere in ``FlatResNet26``), relative to it.
_SEPARABLE_TENSOR = re.compile(
    r'^(depthwise\.\d+\.weight|pointwise\.weight|'
    r'action_network\.fc[12]\.(weight|bias))$')
_BN_TENSOR = re.compile(
    r'^(weight|bias|running_mean|running_var|num_batches_tracked)$')
_GATE_RENAMES = (('action_network.fc1.', 'gate.0.'),
                 ('action_network.fc2.', 'gate.2.'))
#: The per-domain classification heads of the official network.
OFFICIAL_HEAD = re.compile(r'^fcs\.\d+\.(weight|bias)$')
#: Keys only the official layout has (one is enough to recognise it).
_OFFICIAL_MARKERS = re.compile(
    r'^(conv1\.(depthwise|pointwise)\.|pre_bn\.\d+\.|'
    r'blocks\.\d+\.\d+\.(SeparableConv2d[12]|bns[12])\.)')


def is_official_layout(keys) -> bool:
    """Whether ``keys`` (relative to the backbone) are the official
    ``FlatResNet26`` names."""
    return any(_OFFICIAL_MARKERS.match(key) for key in keys)


def _convert_key(key: str) -> str:
    for pattern, replacement, kind in _PREFIX_RULES:
        match = pattern.match(key)
        if match is None:
            continue
        rest = key[match.end():]
        ours = match.expand(replacement)
        if kind == 'conv' and _SEPARABLE_TENSOR.match(rest):
            for old, new in _GATE_RENAMES:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
            return ours + rest
        if kind == 'bn' and _BN_TENSOR.match(rest):
            return ours + rest
    raise ValueError(
        f'convert_official_state_dict: {key!r} is not a tensor of the '
        'official FlatResNet26 (conv1.*, pre_bn.*, blocks.*, bns.*, fcs.*); '
        'give it the state dict of models/resnet.py or '
        'models/resnet_sharing.py, or load a checkpoint of '
        'MultiDomainResNet26 itself with load_state_dict.')


def convert_official_state_dict(
        state_dict: Mapping) -> Tuple['OrderedDict', List[str]]:
    """Rename an official ``FlatResNet26`` state dict to our keys.

    Args:
        state_dict (Mapping[str, Tensor]): The official model's
            ``state_dict()`` (a leading ``module.`` of ``nn.DataParallel``
            on every key is removed).

    Returns:
        tuple[OrderedDict, list[str]]: The state dict for
        ``MultiDomainResNet26(arch='official')`` (same tensors, new keys)
        and the official keys dropped (the FC heads ``fcs.*``).

    Raises:
        ValueError: a key that is not a tensor of the official network.
    """
    keys = list(state_dict)
    strip = 'module.' if keys and all(k.startswith('module.')
                                      for k in keys) else ''
    converted, dropped = OrderedDict(), []
    for key in keys:
        name = key[len(strip):]
        if OFFICIAL_HEAD.match(name):
            dropped.append(key)
            continue
        converted[_convert_key(name)] = state_dict[key]
    return converted, dropped


def convert_official_in_place(state_dict: MutableMapping,
                              prefix: str = '') -> bool:
    """If the keys under ``prefix`` are in the official layout, replace
    them by ours (FC heads dropped, logged); return whether it did.

    Raises:
        ValueError: an official-looking state dict with a key that is not
            a tensor of the official network.
    """
    local = [key for key in state_dict if key.startswith(prefix)]
    if not is_official_layout(key[len(prefix):] for key in local):
        return False
    converted, dropped = convert_official_state_dict(
        OrderedDict((key[len(prefix):], state_dict[key]) for key in local))
    for key in local:
        del state_dict[key]
    for key, value in converted.items():
        state_dict[prefix + key] = value
    message = (f'MultiDomainResNet26: converted an official FlatResNet26 '
               f'state dict ({len(converted)} tensors) to this backbone\'s '
               'keys')
    if dropped:
        message += (f'; dropped its {len(dropped)} per-domain FC head '
                    f'tensors ({", ".join(dropped[:4])}'
                    f'{", ..." if len(dropped) > 4 else ""}): classification '
                    'heads, not part of the backbone; the task head is '
                    'trained on top of it')
    print_log(message + '.', logger='current')
    return True


#: Our keys of a DWSConv's inner norm (the ``'rebuffi'`` arch only).
_SEPARABLE_NORM_KEY = re.compile(
    r'^(stem\.0|stages\.\d+\.\d+\.conv[12])\.norms\.')
_STEM_DEPTHWISE_KEY = 'stem.0.depthwise.0.weight'


def check_arch_of_state_dict(model: nn.Module, state_dict: Mapping,
                             prefix: str = '') -> None:
    """Refuse a ``MultiDomainResNet26`` checkpoint of the other ``arch``.

    The two archs differ in layout, not only widths: ``'rebuffi'`` has a BN
    inside each DWSConv (``stem.0.norms.*``), ``'official'`` has none and a
    final BN (``final_norm.*``). Only positive evidence is acted on, so a
    partial checkpoint passes to the usual key checks.

    Raises:
        ValueError: the checkpoint's layout is the other arch's; the message
            names the ``arch`` that loads it.
    """
    keys = [key[len(prefix):] for key in state_dict if key.startswith(prefix)]
    dws = [m for m in model.modules() if isinstance(m, DWSConv)]
    if not keys or not dws:
        return
    model_inner = any(m.norms is not None for m in dws)
    ckpt_inner = any(_SEPARABLE_NORM_KEY.match(key) for key in keys)
    ckpt_final = any(key.startswith('final_norm.') for key in keys)
    arch = getattr(model, 'arch', '?')
    if ckpt_inner and not model_inner:
        other, evidence = 'rebuffi', (
            'a BN inside each DWSConv, e.g. '
            f'{next(k for k in keys if _SEPARABLE_NORM_KEY.match(k))!r}')
    elif model_inner and (ckpt_final or (_STEM_DEPTHWISE_KEY in keys
                                         and not ckpt_inner)):
        other, evidence = 'official', (
            'no BN inside the DWSConvs' +
            (' and a final BN (final_norm.*)' if ckpt_final else ''))
    else:
        return
    raise ValueError(
        f'MultiDomainResNet26(arch={arch!r}) cannot load this checkpoint: '
        f'it is of arch={other!r} ({evidence}). Build the backbone with '
        f'arch={other!r} to load it (in a config: backbone=dict('
        f"type='MultiDomainResNet26', arch={other!r}, ...)); "
        "arch='official' is the paper's network and the default since it "
        "replaced 'rebuffi'.")
