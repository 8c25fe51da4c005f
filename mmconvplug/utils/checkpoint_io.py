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
"""
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from typing import Any, List, Optional, Union

import torch

PathLike = Union[str, 'os.PathLike[str]']

#: Phrases torch / mmconvplug put in an ``UnpicklingError`` when the
#: weights-only unpickler refuses a global or a call (untrusted content), as
#: opposed to bytes it cannot parse (corruption).
_REFUSED_CONTENT_MARKERS = ('GLOBAL', 'Unsupported global', 'Refused getattr',
                            'is not an allowed global')


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
        return list(
            torch.serialization.get_unsafe_globals_in_checkpoint(path))
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
        return torch.load(path, map_location=map_location, weights_only=True)
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
