"""Fixes for upstream breakage, applied once when mmconvplug is imported.

One module per fix; each declares ``FIX =``
:class:`~mmconvplug.compat.upstream.UpstreamFix` (upstream package, version
range, upstream issue, ``apply``) and is a no-op outside its range. Every
module here is found and applied by :func:`apply_upstream_fixes` and listed
by ``python -m mmconvplug info``; a new fix is one new module. Each is
tested in ``tests/test_compat.py`` by a test that fails without it.
"""
import importlib
import pkgutil
from types import ModuleType
from typing import Dict, List

from .upstream import UpstreamFix

#: Modules of this package that are not fixes.
_NOT_FIXES = frozenset({'upstream'})


def fix_modules() -> List[ModuleType]:
    """Every fix module of this package, imported, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__)
                   if info.name not in _NOT_FIXES
                   and not info.name.startswith('_'))
    return [importlib.import_module(f'{__name__}.{name}') for name in names]


def upstream_fixes() -> Dict[str, UpstreamFix]:
    """``{module name: its FIX}`` for the modules that declare one."""
    fixes = {}
    for module in fix_modules():
        fix = getattr(module, 'FIX', None)
        if isinstance(fix, UpstreamFix):
            fixes[module.__name__.rsplit('.', 1)[1]] = fix
    return fixes


def describe_fixes() -> List[str]:
    """One line per fix module, for ``mmconvplug info``.

    A module without a ``FIX`` declaration is still listed, by the first
    line of its docstring.
    """
    fixes = upstream_fixes()
    lines = []
    for module in fix_modules():
        name = module.__name__.rsplit('.', 1)[1]
        if name in fixes:
            lines.append(fixes[name].describe())
        else:
            doc = (module.__doc__ or 'no description').strip().splitlines()
            lines.append(f'{name}: {doc[0]}')
    return lines


def apply_upstream_fixes() -> Dict[str, bool]:
    """Install every fix whose version range matches; ``{name: applied}``."""
    return {name: fix.install() for name, fix in upstream_fixes().items()}


# Import-time patches: re-exported for tests and explicit callers.
from .cpu_distributed import enable_cpu_distributed  # noqa: E402
from .local_checkpoint_loader import \
    register_local_checkpoint_loader  # noqa: E402
from .optim_conv_variants import patch_optim_conv_variants  # noqa: E402
from .safe_checkpoint_globals import \
    register_checkpoint_safe_globals  # noqa: E402
from .ssd_head_predict import patch_ssd_head_predict  # noqa: E402

APPLIED = apply_upstream_fixes()

__all__ = [
    'UpstreamFix', 'upstream_fixes', 'describe_fixes', 'apply_upstream_fixes',
    'fix_modules', 'enable_cpu_distributed', 'register_local_checkpoint_loader',
    'register_checkpoint_safe_globals', 'patch_ssd_head_predict',
    'patch_optim_conv_variants', 'APPLIED'
]
