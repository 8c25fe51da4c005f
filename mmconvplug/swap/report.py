"""What a ``conv_swap`` did: swapped convs, skipped convs (and why),
parameters; and every conv of a model (:func:`conv_table`), to help write
patterns."""
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

from torch import nn
from torch.nn.modules.conv import _ConvNd

from mmconvplug.analysis import count_parameters, format_table
from mmconvplug.convs.base import is_conv_variant

from .matching import first_match


def pair_text(values: Sequence[int]) -> str:
    """``(3, 3)`` -> ``'3x3'``."""
    return 'x'.join(str(v) for v in values)


@dataclass(frozen=True)
class SwappedConv:
    """One plain conv replaced by a variant.

    Args:
        name (str): Qualified module name (``rpn_head.rpn_cls``).
        variant (str): The variant's type name.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (tuple[int, int]): Kernel (h, w).
        stride (tuple[int, int]): Stride.
        dilation (tuple[int, int]): Dilation.
        groups (int): Groups.
        params_before (int): Parameters of the plain conv.
        params_after (int): Parameters of the variant (trainable or not;
            buffers such as RefConv's frozen basis are not parameters).
    """

    name: str
    variant: str
    in_channels: int
    out_channels: int
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    dilation: Tuple[int, int]
    groups: int
    params_before: int
    params_after: int


@dataclass(frozen=True)
class SkippedConv:
    """A conv a block's ``include`` reached but that stayed as it was.

    Args:
        name (str): Qualified module name.
        type (str): Its class name.
        reason (str): Why it was not swapped.
    """

    name: str
    type: str
    reason: str


@dataclass
class ConvSwapReport:
    """The result of one ``conv_swap`` (all its blocks) on a model.

    Args:
        model (str): The model's class name.
        blocks (list[str]): One line per block (``ConvSwapSpec.describe``).
        swapped (list[SwappedConv]): Every replaced conv, in model order.
        skipped (list[SkippedConv]): Reached but not replaced, with reasons.
        params_before (int): Model parameters before the swap.
        params_after (int): Model parameters after the swap.
    """

    model: str
    blocks: List[str] = field(default_factory=list)
    swapped: List[SwappedConv] = field(default_factory=list)
    skipped: List[SkippedConv] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0

    @property
    def swapped_names(self) -> List[str]:
        """Qualified names of the swapped convs."""
        return [conv.name for conv in self.swapped]

    def summary(self) -> str:
        """One line: how many convs became what, and the parameter change."""
        variants = sorted({conv.variant for conv in self.swapped})
        delta = self.params_after - self.params_before
        return (f'conv_swap on {self.model}: {len(self.swapped)} conv(s) -> '
                f'{"/".join(variants) or "nothing"}, {len(self.skipped)} '
                f'skipped; parameters {self.params_before:,} -> '
                f'{self.params_after:,} ({delta:+,})')

    def table(self) -> str:
        """The full report: blocks, swapped convs, skipped convs."""
        lines = [self.summary()]
        lines += [f'  block {i}: {text}'
                  for i, text in enumerate(self.blocks, 1)]
        if self.swapped:
            rows = [[
                conv.name, conv.variant,
                f'{conv.in_channels}->{conv.out_channels}',
                pair_text(conv.kernel_size),
                pair_text(conv.stride),
                pair_text(conv.dilation), conv.groups,
                f'{conv.params_before:,}', f'{conv.params_after:,}'
            ] for conv in self.swapped]
            lines.append(format_table(
                ['swapped module', 'variant', 'channels', 'kernel',
                 'stride', 'dilation', 'groups', 'params before',
                 'params after'], rows))
        if self.skipped:
            lines.append(format_table(
                ['skipped module', 'type', 'why'],
                [[conv.name, conv.type, conv.reason]
                 for conv in self.skipped]))
        return '\n'.join(lines)

    def __str__(self) -> str:
        return self.table()


def conv_table(model: nn.Module, patterns: Sequence[str] = ()) -> str:
    """Every conv of ``model`` (name, type, geometry, parameters), or those
    under the module-name ``patterns``."""
    rows = []
    for name, module in model.named_modules():
        if not (isinstance(module, _ConvNd) or is_conv_variant(module)):
            continue
        if patterns and first_match(name, patterns) is None:
            continue
        rows.append([
            name,
            type(module).__name__,
            f'{module.in_channels}->{module.out_channels}',
            pair_text(module.kernel_size),
            pair_text(module.stride),
            pair_text(module.dilation),
            module.groups,
            f'{count_parameters(module):,}',
        ])
    return format_table(['module', 'type', 'channels', 'kernel', 'stride',
                         'dilation', 'groups', 'params'], rows)
