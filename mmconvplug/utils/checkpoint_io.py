"""Read and write checkpoints safely.

* :func:`load_checkpoint_file` is ``torch.load`` with ``weights_only=True``
  kept (the safe globals mmengine checkpoints need are registered by
  :mod:`mmconvplug.compat`), turning torch's low-level failures into errors
  that name the file and say what to do: a missing file
  (``FileNotFoundError``), a truncated or corrupted one
  (:class:`CorruptCheckpointError`) and one carrying pickled objects outside
  the allowlist, i.e. content that could run code (:class:`UntrustedCheckpointError`).
* :func:`atomic_save` writes a checkpoint so that a crash, a full disk or an
  object that fails to pickle never leaves a partial file at the target path
  looking complete, and never writes over an existing file unless asked.
* :func:`plain_checkpoint` keeps only what a deployed checkpoint needs, the
  ``state_dict`` and a ``meta`` of plain Python types, so that plain
  ``torch.load(path, weights_only=True)`` reads it in a process that never
  imports mmconvplug (stock mmdet / mmseg tools): no ``message_hub``
  (mmengine ``HistoryBuffer`` objects), optimizer or scheduler state, no
  numpy scalars or arrays.
"""
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from collections import OrderedDict
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from .torch_compat import REFUSED_MARKER, weights_only_load

PathLike = Union[str, 'os.PathLike[str]']

#: Phrases torch / mmconvplug put in an ``UnpicklingError`` when the
#: weights-only unpickler refuses a global or a call (untrusted content), as
#: opposed to bytes it cannot parse (corruption).
_REFUSED_CONTENT_MARKERS = ('GLOBAL', 'Unsupported global', 'Refused getattr',
                            REFUSED_MARKER)


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read: truncated or corrupted.

    A ``RuntimeError`` like torch's own zip-reader error, so code that already
    catches that keeps working.
    """


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that ``weights_only=True`` refuses.

    Such objects can run arbitrary code when unpickled; they are never
    executed. A ``pickle.UnpicklingError`` like torch's own error.
    """


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _short_reason(error: BaseException) -> str:
    """torch's reason without its advice (which suggests weights_only=False)."""
    text = str(error)
    marker = 'WeightsUnpickler error:'
    if marker in text:
        after = text.split(marker, 1)[1].strip()
        if after:
            return after.splitlines()[0].strip()
    first = _first_line(error)
    return first.split('. ')[0].rstrip('.')


def _refused_globals(path: str) -> List[str]:
    """The globals in ``path`` that torch's weights-only unpickler refuses."""
    if not zipfile.is_zipfile(path):
        return []
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(
            path))  # torch >= 2.5; older: AttributeError, caught below
    except Exception:  # the file is unreadable beyond the refusal itself
        return []


def _is_refused_content(error: pickle.UnpicklingError) -> bool:
    text = str(error)
    return any(marker in text for marker in _REFUSED_CONTENT_MARKERS)


def _untrusted_error(path: str,
                     error: pickle.UnpicklingError) -> UntrustedCheckpointError:
    refused = _refused_globals(path)
    what = (f'the global(s) {", ".join(refused)}'
            if refused else 'a refused global or call')
    detail = ' '.join(
        line.strip() for line in str(error).splitlines()
        if any(marker in line for marker in _REFUSED_CONTENT_MARKERS))
    return UntrustedCheckpointError(
        f'Refused to load checkpoint {path!r}: it contains {what}, which is '
        'outside torch\'s weights_only allowlist and could run code when '
        f'unpickled ({detail or _first_line(error)}). Nothing in it was '
        'executed. mmconvplug only loads checkpoints with weights_only=True. '
        'Use checkpoints from a source you trust; if you made this file '
        'yourself, re-save only its tensors and plain data (e.g. '
        "torch.save({'state_dict': model.state_dict()}, path)), or, for a "
        'plain-data class you trust, allowlist it with '
        'torch.serialization.add_safe_globals([YourClass]).')


def _corrupt_error(path: str, error: BaseException) -> CorruptCheckpointError:
    size = osp.getsize(path)
    reason = 'the file is empty' if size == 0 else (
        f'{type(error).__name__}: {_short_reason(error)}')
    return CorruptCheckpointError(
        f'Checkpoint file {path!r} ({size} bytes) is truncated or corrupted '
        f'and cannot be read ({reason}). '
        'It was probably not completely written (a crash or full disk '
        'during saving) or was damaged while copying. Copy it again, or use '
        "an earlier checkpoint (see 'last_checkpoint' and the *.pth files in "
        'the work_dir).')


def load_checkpoint_file(path: PathLike,
                         map_location: Any = 'cpu') -> Any:
    """``torch.load(path, map_location, weights_only=True)`` with clear errors.

    Raises:
        FileNotFoundError: ``path`` does not exist or is not a file.
        UntrustedCheckpointError: the file holds objects outside the
            weights-only allowlist (they are refused, never executed).
        CorruptCheckpointError: the file is empty, truncated or corrupted.
    """
    path = osp.expanduser(os.fspath(path))
    if not osp.isfile(path):
        where = 'is a directory' if osp.isdir(path) else 'does not exist'
        raise FileNotFoundError(
            f'Checkpoint file {path!r} {where} (absolute path: '
            f'{osp.abspath(path)!r}). Pass the path of a .pth file written '
            "by training or tools/fold.py (a work_dir's 'last_checkpoint' "
            'file names the newest one).')
    try:
        return weights_only_load(path, map_location=map_location)
    except pickle.UnpicklingError as error:
        if _is_refused_content(error):
            raise _untrusted_error(path, error) from error
        raise _corrupt_error(path, error) from error
    except (RuntimeError, EOFError, KeyError, ValueError, IndexError,
            zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise _corrupt_error(path, error) from error


def _fsync_directory(directory: str) -> None:
    """Make a rename durable (POSIX); a no-op where directories can't open."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(temp_path: str, path: str, overwrite: bool) -> None:
    """Move the finished temp file to ``path`` in one atomic step."""
    if overwrite:
        os.replace(temp_path, path)
        return
    try:
        # A hard link fails if ``path`` appeared meanwhile: no overwrite race.
        os.link(temp_path, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # filesystems without hard links
        if osp.lexists(path):
            raise _exists_error(path) from None
        os.replace(temp_path, path)
    else:
        os.unlink(temp_path)


def _exists_error(path: str) -> FileExistsError:
    return FileExistsError(
        f'Refusing to write {path!r}: the file already exists (it may be a '
        'training checkpoint). Choose another output path, or delete the '
        'file first if you really mean to replace it (overwrite=True in '
        'code).')


def atomic_save(obj: Any,
                path: PathLike,
                overwrite: bool = False,
                save_fn: Optional[Any] = None) -> str:
    """Save ``obj`` with ``torch.save`` to ``path``, all or nothing.

    The object is written to a temporary file in the same directory, flushed
    to disk, then moved to ``path`` atomically. If anything fails on the way
    (pickling, disk full, interruption) the temporary file is removed and
    ``path`` is untouched: no partial file is ever left there as if complete.

    Args:
        obj: what to save (usually ``{'meta': ..., 'state_dict': ...}``).
        path: the target file; its directory is created if needed.
        overwrite: replace an existing ``path``. Off by default so that an
            export never writes over a training checkpoint.
        save_fn: ``save_fn(obj, file)`` writing to an open binary file;
            defaults to ``torch.save``.

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = osp.abspath(osp.expanduser(os.fspath(path)))
    if osp.isdir(path):
        raise IsADirectoryError(
            f'Cannot save a checkpoint to {path!r}: it is a directory. Pass '
            'a file path such as '
            f'{osp.join(path, "model_folded.pth")!r}.')
    if not overwrite and osp.lexists(path):
        raise _exists_error(path)
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    save_fn = save_fn or torch.save
    fd, temp_path = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.partial', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as file:
            save_fn(obj, file)
            file.flush()
            os.fsync(file.fileno())
        _publish(temp_path, path, overwrite)
    except BaseException:
        if osp.lexists(temp_path):
            os.unlink(temp_path)
        raise
    _fsync_directory(directory)
    return path


#: Leaf values :func:`to_plain_data` keeps as they are.
_PLAIN_LEAVES = (str, bool, int, float, type(None))


def to_plain_data(obj: Any, where: str = '') -> Tuple[Any, List[str]]:
    """``obj`` rebuilt from plain Python types only, and what was dropped.

    Torch's weights-only unpickler reads these without any allowlist:
    ``dict`` (string / number keys), ``list``, ``tuple``, ``str``, ``int``,
    ``float``, ``bool``, ``None`` and tensors. Numpy scalars become Python
    numbers (``.item()``), numpy arrays nested lists, sets sorted lists,
    enums their value, ``torch.dtype`` / ``torch.device`` / paths their
    string. Anything else (e.g. mmengine's ``HistoryBuffer``) is dropped.

    Args:
        obj (Any): the data, e.g. a checkpoint's ``meta``.
        where (str): the name of ``obj`` in dropped paths. Defaults to ''.

    Returns:
        tuple[Any, list[str]]: the plain copy, and the paths (``meta.a[2]``
        style) of the values that were dropped because they are not plain
        data.
    """
    dropped: List[str] = []
    plain = _to_plain(obj, where, dropped)
    return (None if plain is _DROP else plain), dropped


_DROP = object()


def _to_plain(obj: Any, where: str, dropped: List[str]) -> Any:
    if isinstance(obj, Enum):
        obj = obj.value
    if isinstance(obj, np.generic):  # numpy.float64 is also a float
        obj = obj.item()
    if obj is None:
        return None
    for kind in _PLAIN_LEAVES[:-1]:  # bool before int: bool is an int
        if isinstance(obj, kind):
            return kind(obj)  # a subclass becomes the builtin itself
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return _to_plain(obj.tolist(), where, dropped)
    if isinstance(obj, (torch.dtype, torch.device, os.PathLike)):
        return str(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            name = f'{where}.{key}' if where else str(key)
            key = _to_plain(key, name, [])
            if not isinstance(key, _PLAIN_LEAVES):
                dropped.append(name)
                continue
            value = _to_plain(value, name, dropped)
            if value is not _DROP:
                out[key] = value
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj,
                                                    (set, frozenset)) else obj
        out_items = []
        for index, value in enumerate(items):
            value = _to_plain(value, f'{where}[{index}]', dropped)
            if value is not _DROP:
                out_items.append(value)
        return tuple(out_items) if isinstance(obj, tuple) else out_items
    dropped.append(f'{where} ({type(obj).__module__}.{type(obj).__name__})')
    return _DROP


def plain_checkpoint(state_dict: Mapping[str, torch.Tensor],
                     meta: Optional[Mapping] = None,
                     state_dict_key: str = 'state_dict'
                     ) -> Tuple[Dict[str, Any], List[str]]:
    """A checkpoint holding only ``state_dict`` and a plain-typed ``meta``.

    What a deployed or converted checkpoint needs: mmengine, mmdet and mmseg
    read the weights from ``state_dict`` and ``dataset_meta`` (class names,
    palette) from ``meta``. Training state (``message_hub``, ``optimizer``,
    ``param_schedulers``, EMA) is left out; it describes a training run, and
    mmengine's ``HistoryBuffer`` in the message hub is not loadable with
    ``torch.load(weights_only=True)`` unless mmconvplug allowlists it.

    Args:
        state_dict (Mapping[str, Tensor]): the weights; every value must be
            a tensor.
        meta (Mapping, optional): the source checkpoint's ``meta``; kept as
            plain data (see :func:`to_plain_data`). Defaults to None (empty).
        state_dict_key (str): the key the weights go under. Defaults to
            'state_dict'.

    Returns:
        tuple[dict, list[str]]: ``{'meta': ..., state_dict_key: ...}`` and the
        ``meta`` entries dropped because they were not plain data.

    Raises:
        ValueError: a ``state_dict`` value is not a tensor.
    """
    not_tensors = [k for k, v in state_dict.items()
                   if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(
            f'plain_checkpoint: state_dict entries {not_tensors[:5]} are '
            'not tensors. Pass model.state_dict() (or the checkpoint\'s '
            "'state_dict'), not the whole checkpoint.")
    if meta is not None and not isinstance(meta, Mapping):
        meta = {'meta': meta}  # mmengine writes a dict; keep anything else
    plain_meta, dropped = to_plain_data(dict(meta or {}), 'meta')
    weights = OrderedDict(
        (str(k), v.detach().cpu()) for k, v in state_dict.items())
    versions = getattr(state_dict, '_metadata', None)
    if versions is not None:  # module versions, read by _load_from_state_dict
        weights._metadata, _ = to_plain_data(versions)
    return {'meta': plain_meta, state_dict_key: weights}, dropped
