"""Let mmengine load its own checkpoints under torch's ``weights_only=True``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, which only
unpickles allowlisted globals. mmengine 0.10.7 saves, next to the weights, its
``MessageHub`` (``HistoryBuffer`` objects holding numpy arrays) and the param
schedulers' state (``collections.Counter`` milestones), so ``resume=True`` and
``load_from`` fail with "Unsupported global". We allowlist exactly what those
checkpoints contain, and nothing that can run code:

* numpy arrays, dtypes and scalars (the numpy entries torch's own docs list);
* ``HistoryBuffer`` and ``collections.Counter`` (plain data containers);
* ``builtins.getattr`` -- *not* the real one. ``HistoryBuffer`` pickles its
  statistics methods as ``getattr(HistoryBuffer, 'mean')``; allowlisting the
  builtin would let a crafted file fetch any attribute of any object on the
  unpickler's stack (e.g. a function's ``__globals__``, which it could then
  overwrite). We register, under that name, a getattr that resolves only
  ``HistoryBuffer``'s registered statistics methods and refuses all else.

Applies to mmengine 0.10.x up to 0.10.7 (the newest release, still
affected) on every torch: torch >= 2.4 takes the list through
``torch.serialization.add_safe_globals``; on older torch
:mod:`mmconvplug.utils.torch_compat` keeps it for its restricted unpickler
(torch < 2.4 cannot extend its own weights-only allowlist). Upstream:
https://github.com/open-mmlab/mmengine/issues/1655 (and the test-suite fix
https://github.com/open-mmlab/mmengine/pull/1650, which turns
``weights_only`` off instead).
"""
import builtins
import collections
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
from mmengine.logging.history_buffer import HistoryBuffer

from mmconvplug.utils.torch_compat import add_safe_globals

from .upstream import UpstreamChange

SafeGlobal = Union[Callable, Tuple[Callable, str]]


def _statistics_method_names() -> set:
    """Default statistics (set per instance) plus user-registered ones."""
    return set(HistoryBuffer()._statistics_methods) | set(
        HistoryBuffer._statistics_methods)


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and name in _statistics_method_names():
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refused getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'mmconvplug only allows getattr(HistoryBuffer, <statistics method>). '
        'Load only checkpoints you trust; to inspect an untrusted file use '
        'torch.serialization.get_unsafe_globals_in_checkpoint(path).')


def _numpy_globals() -> List[SafeGlobal]:
    """numpy array / dtype / scalar reconstruction, under numpy 1 and 2 names."""
    try:
        multiarray = np._core.multiarray  # numpy >= 2
        prefix = 'numpy._core.multiarray'
    except AttributeError:
        multiarray = np.core.multiarray
        prefix = 'numpy.core.multiarray'
    safe: List[SafeGlobal] = [
        np.ndarray,
        np.dtype,
        (multiarray._reconstruct, f'{prefix}._reconstruct'),
        (multiarray.scalar, f'{prefix}.scalar'),
    ]
    # numpy >= 1.25 pickles some dtypes by their class (numpy.dtypes.*DType).
    for scalar_type in (np.bool_, np.uint8, np.int8, np.int16, np.int32,
                        np.int64, np.float16, np.float32, np.float64):
        safe.append(type(np.dtype(scalar_type)))
    return safe


def checkpoint_safe_globals() -> List[SafeGlobal]:
    """Everything an mmengine 0.10.7 checkpoint needs beyond torch's list."""
    return _numpy_globals() + [
        HistoryBuffer,
        collections.Counter,
        (history_buffer_getattr, f'{builtins.__name__}.getattr'),
    ]


def register_checkpoint_safe_globals() -> None:
    """Allowlist :func:`checkpoint_safe_globals` (torch's list on >= 2.4)."""
    add_safe_globals(checkpoint_safe_globals())


FIX = UpstreamChange(
    name='safe_checkpoint_globals',
    package='mmengine',
    versions='>=0.10.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/issues/1655',
    summary='resume / load_from of mmengine checkpoints fail under '
    "torch.load's weights_only=True (Unsupported global HistoryBuffer)",
    apply=register_checkpoint_safe_globals)
