"""Repository-wide pytest set-up: the docstring Examples of the
``mmconvplug`` package run as doctests.

``pyproject.toml`` lists ``mmconvplug`` in ``testpaths``, so ``make test``
(and ``make test-fast``) collects them. Collecting them here, rather than
with ``--doctest-modules`` in ``addopts``, keeps doctest collection to the
package: the helper scripts under ``tests/`` and ``tools/`` are never
imported as doctest modules, and neither is a built ``mmconvplug/.mim/``
copy of ``tools/``. ``pytest mmconvplug --doctest-modules`` collects the
same items once (pytest's own collector then runs them, not this hook).
"""
from pathlib import Path

from _pytest.doctest import DoctestModule

PACKAGE = Path(__file__).resolve().parent / 'mmconvplug'


def pytest_collect_file(file_path, parent):
    """A :class:`DoctestModule` for every source file of the package."""
    if (file_path.suffix != '.py' or PACKAGE not in file_path.parents
            or '.mim' in file_path.parts
            or parent.config.getoption('doctestmodules')):
        return None
    return DoctestModule.from_parent(parent, path=file_path)
