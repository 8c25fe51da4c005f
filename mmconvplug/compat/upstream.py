"""What every import-time change of upstream behaviour declares.

Importing mmconvplug changes how mmengine, mmcv and mmdet behave in a few
places. Each change is one :class:`UpstreamChange`: what it changes and why
(``summary``), the upstream package and the PEP 440 version range it was
written for, the upstream issue or code, and an ``apply`` function. They
are all in one list, :data:`mmconvplug.compat.UPSTREAM_CHANGES`, shown by
``mmconvplug info``. Three kinds:

* ``'fix'``: works around an upstream bug. :meth:`UpstreamChange.install`
  calls ``apply`` only when the installed versions are in range, so a fixed
  upstream release turns the patch into a no-op instead of patching code
  that changed (the upper bound is the newest release checked to still
  need it).
* ``'extension'``: adds what upstream lacks (the ``conv_swap`` key of
  ``MODELS.build``, conv variants in the optimizer constructor's
  ``paramwise_cfg``).
* ``'replacement'``: replaces a registered upstream class under its own
  name (the ``Pretrained`` initializer).

An extension or a replacement is part of what the plugin does, so it is
applied on every version; its range names the upstream code it was written
against and checked with.
"""
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Dict, Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

#: The kinds of :class:`UpstreamChange`.
KINDS = ('fix', 'extension', 'replacement')


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
class UpstreamChange:
    """One change of upstream behaviour made when mmconvplug is imported.

    Args:
        name (str): Short name (a fix's is its module's name).
        package (str): The distribution whose behaviour changes, e.g.
            ``'mmdet'``.
        versions (str): PEP 440 range of ``package``: for a fix, the
            releases it applies to (e.g. ``'>=3.0.0,<=3.3.0'``); for the
            other kinds, the releases it was written and checked against.
        issue (str): URL of the upstream issue or pull request (or of the
            upstream code, when no issue exists).
        summary (str): One line: what changes and why (for a fix: what
            breaks without it).
        apply (Callable[[], None]): Installs the change; idempotent.
        requires (dict): Further ``{distribution: range}`` conditions of a
            fix, e.g. ``{'torch': '>=2.4'}``. Defaults to ``{}``.
        kind (str): One of :data:`KINDS`. Defaults to ``'fix'``.
        state (Callable[[], str], optional): Says where the change is in
            effect, for ``mmconvplug info``. Defaults to None.
    """

    name: str
    package: str
    versions: str
    issue: str
    summary: str
    apply: Callable[[], None]
    requires: Dict[str, str] = field(default_factory=dict)
    kind: str = 'fix'
    state: Optional[Callable[[], str]] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f'UpstreamChange {self.name!r}: kind '
                             f'{self.kind!r} is not one of {KINDS}.')
        if not (self.versions and self.summary and self.issue):
            raise ValueError(
                f'UpstreamChange {self.name!r}: versions, issue and summary '
                '(what changes and why) are required.')

    def conditions(self) -> Dict[str, str]:
        """Every ``{distribution: range}`` that must hold."""
        return {self.package: self.versions, **self.requires}

    def in_range(self) -> bool:
        """True when every installed version is in its range."""
        return all(
            version_in_range(installed_version(dist), spec)
            for dist, spec in self.conditions().items())

    def needed(self) -> bool:
        """True when :meth:`install` applies the change: a fix in range,
        any other kind always."""
        return self.kind != 'fix' or self.in_range()

    def install(self) -> bool:
        """Apply the change when :meth:`needed`; return whether it was."""
        if not self.needed():
            return False
        self.apply()
        return True

    def describe(self) -> str:
        """One line for ``mmconvplug info``: name, kind, ranges, state, why
        (the summary) and the upstream issue."""
        ranges = ', '.join(f'{d} {s}' for d, s in self.conditions().items())
        if self.kind == 'fix':
            state = 'applied' if self.needed() else 'not needed here'
        else:
            state = 'applied' if self.in_range() else (
                'applied, outside the checked range')
        if self.state is not None:
            state = f'{state}: {self.state()}'
        return (f'{self.name} ({self.kind}; {ranges}): {state}; '
                f'{self.summary}; {self.issue}')


#: The 0.2.0 name of :class:`UpstreamChange` (every change was a fix then).
UpstreamFix = UpstreamChange
