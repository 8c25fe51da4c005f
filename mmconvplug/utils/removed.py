"""Removed and renamed public names fail loudly, naming the replacement.

A name mmconvplug no longer has (a function, a class, a registered hook
type) raises :class:`RemovedAPIError` where it is used, with what to use
instead; ``CHANGELOG.md`` lists each one.

* a module attribute: the module sets ``__getattr__ = removed_names(
  __name__, {'old': 'what to use instead'})``; ``from module import old``
  and ``module.old`` then raise;
* a registered type name (a config's ``type='OldHook'``):
  :func:`removed_type` makes a class that raises when it is built.

Example:
    >>> __getattr__ = removed_names('pkg', {'old': 'use pkg.new'})
    >>> try:
    ...     __getattr__('old')
    ... except RemovedAPIError as error:
    ...     print(error)
    pkg.old was removed after mmconvplug 0.2.0: use pkg.new (see CHANGELOG.md).
"""
from typing import Any, Callable, Mapping


class RemovedAPIError(ImportError):
    """A removed or renamed mmconvplug name was used.

    An ``ImportError`` so that ``from module import old_name`` shows this
    message (an ``AttributeError`` would be replaced by Python's "cannot
    import name").
    """


def removed_message(name: str, replacement: str) -> str:
    """``'<name> was removed after mmconvplug 0.2.0: <replacement> ...'``."""
    return (f'{name} was removed after mmconvplug 0.2.0: {replacement} '
            '(see CHANGELOG.md).')


def removed_names(module: str,
                  replacements: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` raising :class:`RemovedAPIError` for each
    removed name (``AttributeError`` for any other unknown name).

    Args:
        module (str): The module's ``__name__``.
        replacements (Mapping[str, str]): ``{removed name: what to use
            instead}``.
    """

    def __getattr__(name: str) -> Any:
        if name in replacements:
            raise RemovedAPIError(
                removed_message(f'{module}.{name}', replacements[name]))
        raise AttributeError(f'module {module!r} has no attribute {name!r}')

    return __getattr__


def removed_type(name: str, replacement: str, base: type = object) -> type:
    """A class that raises :class:`RemovedAPIError` when built: register it
    under a removed type name so a config that still uses the name is told
    what to write instead.

    Args:
        name (str): The removed type name (``'CheckpointKeysHook'``).
        replacement (str): What to write instead.
        base (type): The class to derive from (e.g. mmengine's ``Hook``).
    """

    def __init__(self, *args, **kwargs) -> None:
        raise RemovedAPIError(
            removed_message(f"type={name!r}", replacement))

    return type(name, (base, ), {
        '__init__': __init__,
        '__doc__': f'Removed: {replacement}',
        '__module__': __name__,
        'mmconvplug_removed': True,  # not listed as a registered type
    })
