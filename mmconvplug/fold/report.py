"""What a fold did: which layers folded, which stayed (and why), which BNs fused.

:func:`mmconvplug.fold.fold_model` fills a :class:`FoldReport`; the
:class:`~mmconvplug.engine.hooks.FoldHook` logs it and ``tools/fold.py``
prints it, so a user always learns when part of a model could not fold.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import List


@dataclass(frozen=True)
class FoldedLayer:
    """A conv variant replaced by its folded module."""

    name: str
    from_type: str
    to_type: str


@dataclass(frozen=True)
class KeptLayer:
    """A conv variant left as it is, with the reason."""

    name: str
    type: str
    reason: str


@dataclass(frozen=True)
class FusedNorm:
    """A BatchNorm folded into the conv right before it."""

    conv_name: str
    norm_name: str


@dataclass
class FoldReport:
    """Everything :func:`fold_model` changed, or did not change, in a model."""

    folded: List[FoldedLayer] = field(default_factory=list)
    kept: List[KeptLayer] = field(default_factory=list)
    fused_norms: List[FusedNorm] = field(default_factory=list)

    @property
    def nothing_to_fold(self) -> bool:
        """True when the model held no conv variant and no BN was fused."""
        return not (self.folded or self.kept or self.fused_norms)

    @property
    def fully_folded(self) -> bool:
        """True when no conv variant stayed unfolded."""
        return not self.kept

    def summary(self) -> str:
        """A few lines for logs: counts per type, then every kept layer."""
        if self.nothing_to_fold:
            return ('fold: nothing to fold (the model has no mmconvplug conv '
                    'variant and no BatchNorm was fused).')
        lines = []
        by_type = Counter(layer.from_type for layer in self.folded)
        folded_types = ', '.join(f'{t} x{n}' for t, n in sorted(by_type.items()))
        lines.append(f'fold: folded {len(self.folded)} layer(s)'
                     + (f' ({folded_types})' if folded_types else ''))
        if self.fused_norms:
            lines.append(f'fold: fused {len(self.fused_norms)} BatchNorm(s) '
                         'into the conv before them (eval statistics)')
        if self.kept:
            lines.append(f'fold: kept {len(self.kept)} layer(s) unfolded:')
            lines.extend(f'  {layer.name} ({layer.type}): {layer.reason}'
                         for layer in self.kept)
        return '\n'.join(lines)

    def __str__(self) -> str:
        return self.summary()
