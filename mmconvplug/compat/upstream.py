"""What every module of :mod:`mmconvplug.compat` declares: one upstream fix.

A fix module defines ``FIX = UpstreamFix(...)``: the upstream package and
the PEP 440 version range it patches, the upstream issue it works around and
an ``apply`` function. :meth:`UpstreamFix.install` calls ``apply`` only when
the installed versions are in range, so a fixed upstream release turns the
patch into a no-op instead of patching code that changed.
"""
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Dict, Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version


def installed_version(distribution: str) -> Optional[str]:
    """The installed version of ``distribution``, or None when absent."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def version_in_range(version: Optional[str], specifier: str) -> bool:
    """True when ``version`` satisfies the PEP 440 ``specifier``.

    A local label (``2.5.1+cpu``) is ignored; a missing or unparsable
    version is out of range.
    """
    if version is None:
        return False
    try:
        public = Version(version).public
    except InvalidVersion:
        return False
    return SpecifierSet(specifier).contains(public, prereleases=True)


@dataclass(frozen=True)
class UpstreamFix:
    """A patch of upstream behaviour, applied only where it is needed.

    Args:
        name (str): Short name, the fix module's name.
        package (str): The distribution whose behaviour is patched, e.g.
            ``'mmdet'``.
        versions (str): PEP 440 range of ``package`` the fix applies to,
            e.g. ``'>=3.0.0,<=3.3.0'`` (the upper bound is the newest
            release checked to still need it).
        issue (str): URL of the upstream issue or pull request (or of the
            upstream code, when no issue exists).
        summary (str): One line: what breaks without the fix.
        apply (Callable[[], None]): Installs the patch; idempotent.
        requires (dict): Further ``{distribution: range}`` conditions, e.g.
            ``{'torch': '>=2.4'}``. Defaults to ``{}``.
    """

    name: str
    package: str
    versions: str
    issue: str
    summary: str
    apply: Callable[[], None]
    requires: Dict[str, str] = field(default_factory=dict)

    def conditions(self) -> Dict[str, str]:
        """Every ``{distribution: range}`` that must hold."""
        return {self.package: self.versions, **self.requires}

    def needed(self) -> bool:
        """True when every installed version is in its range."""
        return all(
            version_in_range(installed_version(dist), spec)
            for dist, spec in self.conditions().items())

    def install(self) -> bool:
        """Apply the fix when :meth:`needed`; return whether it was."""
        if not self.needed():
            return False
        self.apply()
        return True

    def describe(self) -> str:
        """One line for ``mmconvplug info``: name, ranges, state, why
        (the summary) and the upstream issue."""
        ranges = ', '.join(f'{d} {s}' for d, s in self.conditions().items())
        state = 'applied' if self.needed() else 'not needed here'
        return f'{self.name} ({ranges}): {state}; {self.summary}; {self.issue}'
