"""Say why mmcv's compiled ops do not load, and what to do.

mmcv's ops (``mmcv._ext``) are a C++ extension built against one torch. A
wheel built for another torch loads with "undefined symbol" errors, which
name neither torch. :func:`mmcv_ops_problem` names the torch the extension
was built for (read from the wheel cache key ``scripts/setup.sh`` installs
from, recorded in pip's ``direct_url.json``), the torch installed, and the
fix.

This file imports only the standard library and torch, so
``scripts/setup.sh`` runs it as a script before mmconvplug is installed::

    python mmconvplug/utils/mmcv_ops.py   # exit 1 and the diagnosis if broken
"""
import importlib
import json
import re
import sys
from importlib import metadata
from typing import Optional

#: ``torch<version>-cu<cuda>-cp<abi>-<platform>-<ops>``, the cache key.
_KEY = re.compile(r'/mmcv-[^/]+/torch(?P<torch>[^/]+?)-cu(?P<cuda>[^/-]+)'
                  r'-(?P<abi>cp\d+)-(?P<platform>[^/]+)-(?P<ops>\w+ops)/')

FIX = ('Fix: run `bash scripts/setup.sh` (or `make setup`) in this '
       'environment: it installs an mmcv wheel built for this exact torch '
       '(building one, about 15 minutes on 2 cores, the first time). Without '
       'the script: pip uninstall -y mmcv && pip install --no-cache-dir '
       '--no-build-isolation mmcv==2.1.0')


def mmcv_built_for() -> Optional[str]:
    """The torch the installed mmcv wheel was built for, where known.

    Returns:
        str | None: e.g. ``'2.13.0+cpu (CUDA none, cp311, cpuops)'`` for a
        wheel installed by ``scripts/setup.sh`` from its keyed cache; None
        for an mmcv installed any other way (pip records no such origin).
    """
    try:
        origin = metadata.distribution('mmcv').read_text('direct_url.json')
    except metadata.PackageNotFoundError:
        return None
    if not origin:
        return None
    match = _KEY.search(json.loads(origin).get('url', ''))
    if match is None:
        return None
    torch_version = match['torch'].replace('_', '+', 1)
    return (f"{torch_version} (CUDA {match['cuda']}, {match['abi']}, "
            f"{match['ops']})")


def mmcv_ops_problem() -> Optional[str]:
    """None when ``mmcv._ext`` loads; else a message naming cause and fix."""
    try:
        importlib.import_module('mmcv._ext')
        return None
    except ModuleNotFoundError as error:
        if error.name == 'mmcv':
            return ('mmcv is not installed. mmconvplug needs mmcv 2.x with '
                    f'its compiled ops. {FIX}')
        if error.name and not error.name.startswith('mmcv'):
            return (f'mmcv cannot be imported: its requirement {error.name!r} '
                    f'is not installed ({error}). Fix: pip install '
                    f'{error.name} (scripts/setup.sh installs it).')
        reason = ('mmcv is installed without its compiled ops (mmcv._ext '
                  'is missing: mmcv-lite, or a build without ops)')
    except (ImportError, OSError) as error:
        reason = f'mmcv\'s compiled ops do not load ({error})'
    import torch
    built_for = mmcv_built_for()
    built = (f'built for torch {built_for}' if built_for else
             'built for an unknown torch (not installed by scripts/setup.sh)')
    return (f'{reason}. The installed mmcv was {built}; this environment has '
            f'torch {torch.__version__} (CUDA {torch.version.cuda or "none"}). '
            f'An mmcv extension only loads with the torch it was built '
            f'against. {FIX}')


def require_mmcv_ops() -> None:
    """Raise ``ImportError`` with :func:`mmcv_ops_problem`'s message."""
    problem = mmcv_ops_problem()
    if problem is not None:
        raise ImportError(problem)


if __name__ == '__main__':
    message = mmcv_ops_problem()
    if message:
        print(message, file=sys.stderr)
        sys.exit(1)
    print('mmcv ops: ok')
