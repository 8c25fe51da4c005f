"""Every import-time change of upstream behaviour, in one list.

:data:`UPSTREAM_CHANGES` holds each change importing mmconvplug makes to
mmengine, mmcv or mmdet, as an :class:`~mmconvplug.compat.upstream.
UpstreamChange` (what changes and why, upstream package and version range,
upstream issue or code, kind), in the order they were applied;
``mmconvplug info`` prints it (:func:`describe_changes`). A change is
applied by :func:`install_upstream_change` and by nothing else:

* the fixes and extensions of this package: one module each, declaring
  ``FIX = UpstreamChange(...)``; they are found here and installed when
  this package is imported (a fix only within its version range). Each is
  tested in ``tests/test_compat.py`` by a test that fails without it;
* changes that need a higher layer of the package: the ``conv_swap`` key of
  ``MODELS.build`` (:mod:`mmconvplug.swap.build_hook`, installed by
  :mod:`mmconvplug.swap`) and the key-checked ``Pretrained`` initializer
  (:mod:`mmconvplug.engine.pretrained_init`, installed by
  :mod:`mmconvplug.engine`), each declaring its ``CHANGE``.

``tests/test_compat.py`` checks that the list after ``import mmconvplug`` is
exactly these and that no other module patches upstream.
"""
import importlib
import pkgutil
from types import ModuleType
from typing import Dict, List

from .upstream import UpstreamChange, UpstreamFix

#: Modules of this package that are not fixes.
_NOT_FIXES = frozenset({'upstream'})

#: ``{name: change}`` of every upstream change made, in the order applied.
UPSTREAM_CHANGES: Dict[str, UpstreamChange] = {}

#: ``{name: whether it was applied}`` for the changes of
#: :data:`UPSTREAM_CHANGES`.
APPLIED: Dict[str, bool] = {}


def fix_modules() -> List[ModuleType]:
    """Every fix module of this package, imported, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__)
                   if info.name not in _NOT_FIXES
                   and not info.name.startswith('_'))
    return [importlib.import_module(f'{__name__}.{name}') for name in names]


def upstream_fixes() -> Dict[str, UpstreamChange]:
    """``{module name: its FIX}`` for the modules of this package."""
    fixes = {}
    for module in fix_modules():
        fix = getattr(module, 'FIX', None)
        if isinstance(fix, UpstreamChange):
            fixes[module.__name__.rsplit('.', 1)[1]] = fix
    return fixes


def install_upstream_change(change: UpstreamChange) -> bool:
    """Add ``change`` to :data:`UPSTREAM_CHANGES` and install it (a fix
    only within its range); returns whether it was applied. Idempotent.

    Raises:
        ValueError: another change already has its name.
    """
    known = UPSTREAM_CHANGES.get(change.name)
    if known is not None and known is not change:
        raise ValueError(f'two upstream changes are named {change.name!r}.')
    UPSTREAM_CHANGES[change.name] = change
    APPLIED[change.name] = change.install()
    return APPLIED[change.name]


def upstream_changes() -> Dict[str, UpstreamChange]:
    """A copy of :data:`UPSTREAM_CHANGES`."""
    return dict(UPSTREAM_CHANGES)


def describe_changes() -> List[str]:
    """One line per upstream change, for ``mmconvplug info``."""
    return [change.describe() for change in UPSTREAM_CHANGES.values()]


def apply_upstream_fixes() -> Dict[str, bool]:
    """Install every fix module's change; ``{name: applied}``."""
    return {name: install_upstream_change(fix)
            for name, fix in upstream_fixes().items()}


# Import-time patches: re-exported for tests and explicit callers.
from .cpu_distributed import enable_cpu_distributed  # noqa: E402
from .local_checkpoint_loader import register_local_checkpoint_loader  # noqa: E402
from .optim_conv_variants import patch_optim_conv_variants  # noqa: E402
from .safe_checkpoint_globals import register_checkpoint_safe_globals  # noqa: E402
from .ssd_head_predict import patch_ssd_head_predict  # noqa: E402

apply_upstream_fixes()

__all__ = [
    'UpstreamChange', 'UpstreamFix', 'UPSTREAM_CHANGES', 'APPLIED',
    'install_upstream_change', 'upstream_changes', 'describe_changes',
    'upstream_fixes', 'apply_upstream_fixes', 'fix_modules',
    'enable_cpu_distributed', 'register_local_checkpoint_loader',
    'register_checkpoint_safe_globals', 'patch_ssd_head_predict',
    'patch_optim_conv_variants'
]

from mmconvplug.utils.removed import removed_names  # noqa: E402

__getattr__ = removed_names(__name__, {
    'describe_fixes': 'use mmconvplug.compat.describe_changes (every '
    'upstream change, the fixes among them)',
})
