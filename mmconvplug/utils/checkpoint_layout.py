"""Where a checkpoint file keeps its weights, read as mmengine reads them.

Checkpoints come in a few layouts:

* **bare**: the file is the state dict itself (``torch.save(model.
  state_dict())``, torchvision releases);
* **``state_dict``-keyed**: ``{'state_dict': ..., 'meta': ...}`` (mmengine's
  Runner, mmcv/mmdet/mmseg releases, Lightning);
* **``model``-keyed**: ``{'model': ..., 'iteration': ...}`` (detectron2 and
  many plain training scripts).

Any of them may carry a DDP ``module.`` prefix on every key (a model saved
while wrapped in ``DistributedDataParallel``). mmengine's loaders
(``load_checkpoint``, ``init_cfg=dict(type='Pretrained')``) read
``checkpoint['state_dict']`` if present, else the whole file, and strip
``^module\\.`` from each key; they never look under ``model``.
:func:`read_checkpoint_layout` finds the weights in all three layouts,
strips the prefix the same way, and returns a :class:`CheckpointLayout`
that says what it found. It is the one reader of weights out of a
checkpoint: the converter (``tools/convert_pretrained.py``), ``init_model``
and the fold and ONNX exports (:mod:`mmconvplug.apis`) read all three
layouts; the checkpoint-fit check of what mmengine itself loads
(:mod:`mmconvplug.engine.checkpoint_fit`) reads mmengine's two
(:data:`MMENGINE_STATE_DICT_KEYS`).
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

#: Keys under which a checkpoint may hold its state dict, in the order they
#: are looked up (mmengine reads only the first).
STATE_DICT_KEYS = ('state_dict', 'model')

#: The keys mmengine's own loaders look under (else the whole file).
MMENGINE_STATE_DICT_KEYS = ('state_dict', )

#: mmengine's ``revise_keys`` default: what a DDP wrapper adds to each key.
DDP_PREFIX = re.compile(r'^module\.')


@dataclass(frozen=True)
class CheckpointLayout:
    """What :func:`read_checkpoint_layout` found in a checkpoint.

    Args:
        holder (str, optional): The top-level key holding the weights
            (``'state_dict'`` or ``'model'``); None for a bare state dict.
        stripped_prefix (int): How many keys had a DDP ``module.`` prefix,
            removed as mmengine's loader removes it. 0 for none.
        num_tensors (int): Entries in the state dict.
    """

    holder: Optional[str]
    stripped_prefix: int
    num_tensors: int

    @property
    def name(self) -> str:
        """``'bare'``, ``'state_dict-keyed'`` or ``'model-keyed'``."""
        return 'bare' if self.holder is None else f'{self.holder}-keyed'

    def __str__(self) -> str:
        where = ('a bare state dict' if self.holder is None else
                 f"weights under '{self.holder}'")
        text = f'{self.name} checkpoint ({where}, {self.num_tensors} tensors'
        if self.stripped_prefix:
            text += (f"; DDP prefix 'module.' stripped from "
                     f'{self.stripped_prefix} keys, as mmengine\'s loader '
                     'does')
        return text + ')'


def _is_state_dict(value: Any) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor)
        for k, v in value.items()))


def _describe(checkpoint: Any) -> str:
    if not isinstance(checkpoint, Mapping):
        return f'a {type(checkpoint).__name__}'
    entries = ', '.join(f'{k!r}: {type(v).__name__}'
                        for k, v in list(checkpoint.items())[:8])
    more = ', ...' if len(checkpoint) > 8 else ''
    return f'a dict with {{{entries}{more}}}'


def strip_ddp_prefix(state_dict: Mapping[str, torch.Tensor]
                     ) -> Tuple['OrderedDict[str, torch.Tensor]', int]:
    """``state_dict`` with ``^module\\.`` removed from each key, and how
    many keys had it (module versions in ``_metadata`` revised alike).

    Raises:
        ValueError: two keys become one (``module.x`` and ``x`` both there).
    """
    stripped = OrderedDict()
    source = {}
    count = 0
    for key, value in state_dict.items():
        new_key = DDP_PREFIX.sub('', key)
        count += new_key != key
        if new_key in stripped:
            raise ValueError(
                f"checkpoint keys {source[new_key]!r} and {key!r} are the same "
                "tensor once the DDP prefix 'module.' is stripped (as "
                "mmengine's loader does); the file mixes a wrapped and an "
                'unwrapped model. Re-save it from one model.')
        stripped[new_key] = value
        source[new_key] = key
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        revised: Dict[str, Any] = OrderedDict()
        for key, value in metadata.items():
            if key == 'module' or key.startswith('module.'):
                revised[key[len('module.'):]] = value
            elif key not in revised:
                revised[key] = value
        stripped._metadata = revised
    return stripped, count


def read_checkpoint_layout(
    checkpoint: Any,
    holders: Sequence[str] = STATE_DICT_KEYS
) -> Tuple['OrderedDict[str, torch.Tensor]', CheckpointLayout]:
    """The state dict of a loaded checkpoint and its :class:`CheckpointLayout`.

    Args:
        checkpoint (Any): What ``torch.load`` returned.
        holders (Sequence[str]): The top-level keys that may hold the
            weights, in lookup order. Defaults to :data:`STATE_DICT_KEYS`;
            :data:`MMENGINE_STATE_DICT_KEYS` reads what mmengine reads.

    Returns:
        tuple[OrderedDict[str, Tensor], CheckpointLayout]: the weights (DDP
        prefix stripped) and what was found.

    Raises:
        ValueError: no state dict of tensors, neither bare nor under
            ``holders``; or a prefix clash.

    Example:
        >>> import torch
        >>> ckpt = {'model': {'module.conv.weight': torch.ones(1)}}
        >>> state, layout = read_checkpoint_layout(ckpt)
        >>> list(state), layout.name, layout.stripped_prefix
        (['conv.weight'], 'model-keyed', 1)
    """
    holder = None
    if isinstance(checkpoint, Mapping):
        holder = next((key for key in holders
                       if _is_state_dict(checkpoint.get(key))), None)
    if holder is not None:
        state_dict = checkpoint[holder]
    elif _is_state_dict(checkpoint):
        state_dict = checkpoint
    else:
        raise ValueError(
            f'the checkpoint is {_describe(checkpoint)}: neither a bare '
            'state dict of tensors nor one under '
            f'{" or ".join(repr(k) for k in holders)}. Pass a '
            'PyTorch/mmengine checkpoint of model weights (re-save yours as '
            "torch.save({'state_dict': model.state_dict()}, path)).")
    stripped, count = strip_ddp_prefix(state_dict)
    return stripped, CheckpointLayout(holder, count, len(stripped))
