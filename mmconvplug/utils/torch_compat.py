"""One behaviour on every supported torch (2.1 to 2.14).

Newer-torch APIs the package relies on, each with the same behaviour on an
older torch:

* :func:`is_compiling`: ``torch.compiler.is_compiling`` (torch >= 2.3), else
  ``torch._dynamo.is_compiling`` (torch 2.0 - 2.2).
* :func:`add_safe_globals`, :func:`clear_safe_globals`,
  :func:`get_safe_globals`: torch's weights-only allowlist
  (``torch.serialization.*_safe_globals``, torch >= 2.4), else an allowlist
  of our own that :func:`weights_only_load` honours.
* :func:`weights_only_load`: ``torch.load(..., weights_only=True)``. On
  torch < 2.4 the built-in weights-only unpickler cannot be extended, so
  this passes ``torch.load`` a *restricted* unpickler instead: it resolves
  exactly the globals torch's own weights-only unpickler allows
  (``torch._weights_only_unpickler._get_allowed_globals()``) plus those
  given to :func:`add_safe_globals` -- the same allowlist the torch >= 2.4
  path uses -- and refuses every other global before anything is called
  (the "restricting globals" pattern of Python's ``pickle`` docs). A
  code-carrying file is refused on every torch.
* :func:`require_torch`: a clear error naming the torch a feature needs.
"""
import _codecs
import _compat_pickle
import importlib
import inspect
import io
import pickle
from typing import Any, Callable, Dict, List, Tuple, Union

import torch
from packaging.version import Version

SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: The installed torch, without its local label (``2.1.2+cu121`` -> 2.1.2).
TORCH_VERSION = Version(Version(torch.__version__).base_version)

#: Phrase in the error a refused global raises on torch < 2.4 (the
#: checkpoint loader reads it as "untrusted content", not corruption).
REFUSED_MARKER = 'is not an allowed global'

# The allowlist used on torch < 2.4 ({'module.qualname': object}).
_LEGACY_SAFE_GLOBALS: Dict[str, Any] = {}


def is_compiling() -> bool:
    """True while ``torch.compile`` (dynamo) traces the calling code."""
    compiler = getattr(torch, 'compiler', None)
    query = getattr(compiler, 'is_compiling', None)
    if query is None:  # torch < 2.3
        query = importlib.import_module('torch._dynamo').is_compiling
    return bool(query())


def has_native_safe_globals() -> bool:
    """True when torch's weights-only unpickler takes an allowlist (>= 2.4)."""
    return hasattr(torch.serialization, 'add_safe_globals')


def _global_name(entry: SafeGlobal) -> Tuple[str, Any]:
    if isinstance(entry, tuple):
        obj, name = entry
        return name, obj
    return f'{entry.__module__}.{entry.__qualname__}', entry


def add_safe_globals(safe_globals: List[SafeGlobal]) -> None:
    """Allow ``safe_globals`` in :func:`weights_only_load`.

    Args:
        safe_globals (list): Classes or functions, or ``(object, name)``
            pairs where the pickle names the object differently, as in
            ``torch.serialization.add_safe_globals``.
    """
    if has_native_safe_globals():
        torch.serialization.add_safe_globals(safe_globals)
        return
    for entry in safe_globals:
        name, obj = _global_name(entry)
        _LEGACY_SAFE_GLOBALS[name] = obj


def clear_safe_globals() -> None:
    """Forget every global given to :func:`add_safe_globals`."""
    if has_native_safe_globals():
        torch.serialization.clear_safe_globals()
    _LEGACY_SAFE_GLOBALS.clear()


def get_safe_globals() -> List[Any]:
    """The globals given to :func:`add_safe_globals` (torch's own aside)."""
    if has_native_safe_globals():
        return list(torch.serialization.get_safe_globals())
    return list(_LEGACY_SAFE_GLOBALS.values())


def _legacy_allowed_globals() -> Dict[str, Any]:
    """torch's weights-only list plus the user's (either registry)."""
    from torch import _weights_only_unpickler
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    # torch >= 2.4 allows it too: protocol-2 numpy arrays pickle their bytes
    # as _codecs.encode(str, 'latin1'), which only returns bytes.
    allowed['_codecs.encode'] = _codecs.encode
    if hasattr(torch.serialization, 'get_safe_globals'):
        allowed.update(
            _global_name(entry)
            for entry in torch.serialization.get_safe_globals())
    allowed.update(_LEGACY_SAFE_GLOBALS)
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allowlisted globals (torch < 2.4).

    Every ``GLOBAL`` / ``STACK_GLOBAL`` goes through :meth:`find_class`, so
    a ``REDUCE`` or ``NEWOBJ`` can only ever call an allowlisted object:
    a pickled ``os.system`` call is refused before it can run.
    """

    def find_class(self, module: str, name: str) -> Any:
        # torch.save writes protocol 2, with Python 2 names
        # (``__builtin__.getattr``): map them as pickle's own find_class does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        allowed = _legacy_allowed_globals()
        full_name = f'{module}.{name}'
        if full_name in allowed:
            return allowed[full_name]
        raise pickle.UnpicklingError(
            f'Weights only load failed: GLOBAL {full_name} {REFUSED_MARKER} '
            '(torch < 2.4 restricted unpickler; the allowlist is torch\'s '
            'weights-only list plus mmconvplug.utils.torch_compat.'
            'add_safe_globals).')


class _RestrictedPickleModule:
    """The ``pickle_module`` handed to ``torch.load`` on torch < 2.4."""

    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError
    __name__ = 'mmconvplug_restricted_pickle'

    @staticmethod
    def load(file: io.IOBase, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()


def weights_only_load(f: Any, map_location: Any = 'cpu') -> Any:
    """``torch.load(f, map_location, weights_only=True)`` on every torch.

    Args:
        f (str | file-like): The checkpoint.
        map_location: As ``torch.load``'s. Defaults to ``'cpu'``.

    Returns:
        The unpickled object.

    Raises:
        pickle.UnpicklingError: The file holds a global outside the
            allowlist (nothing of it was executed).
        RuntimeError: The file is not a readable checkpoint.
    """
    if has_native_safe_globals():
        return torch.load(f, map_location=map_location, weights_only=True)
    return restricted_load(f, map_location=map_location)


def restricted_load(f: Any, map_location: Any = 'cpu') -> Any:
    """The torch < 2.4 path of :func:`weights_only_load`, on any torch.

    torch's own weights-only unpickler has a fixed allowlist before 2.4, and
    ``torch.load`` refuses a ``pickle_module`` together with
    ``weights_only=True``; the restricted pickle module passed here *is*
    the weights-only check (see the module docstring). Callable on every
    torch, so the tests exercise it everywhere.

    Raises:
        pickle.UnpicklingError: The file holds a global outside the
            allowlist (nothing of it was executed).
    """
    return torch.load(
        f, map_location=map_location, weights_only=False,
        pickle_module=_RestrictedPickleModule)


def torchscript_exporter_kwargs() -> Dict[str, Any]:
    """``torch.onnx.export`` keywords that select the TorchScript exporter.

    torch >= 2.9 defaults to the ``torch.export``-based exporter (it needs
    ``onnxscript``); torch < 2.5 has no ``dynamo`` argument and only the
    TorchScript exporter, which ``dynamic_axes`` drives.
    """
    params = inspect.signature(torch.onnx.export).parameters
    return {'dynamo': False} if 'dynamo' in params else {}


def require_torch(minimum: str, feature: str) -> None:
    """Raise unless the installed torch is at least ``minimum``.

    Args:
        minimum (str): The oldest torch that has ``feature``, e.g. ``'2.2'``.
        feature (str): What needs it, for the message.

    Raises:
        RuntimeError: torch is older than ``minimum``; the message names
            both versions and the fix.
    """
    if TORCH_VERSION < Version(minimum):
        raise RuntimeError(
            f'{feature} needs torch >= {minimum}; this environment has torch '
            f'{torch.__version__}. Install a newer torch (mmconvplug is '
            'tested with torch 2.1 to 2.14; see docs/compatibility.md).')
