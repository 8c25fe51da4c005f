"""Model-wide conv swap: put a conv variant anywhere, from the config.

``conv_cfg`` reaches only the convs of modules that honour it. A
``conv_swap`` block in a model config reaches every other plain conv (RPN
and SSD predictors, ASPP branches, VGG, ...) by module-name pattern and
kernel / groups / stride filter, right after the model is built::

    model = dict(conv_swap=dict(type='RefConv', min_kernel_size=2))

* :mod:`.spec`: the block's keys, checked (:func:`parse_conv_swap`);
* :mod:`.matching`: fnmatch patterns over module names, and the error that
  names the closest module names when a pattern matches nothing;
* :mod:`.swap_convs`: :func:`swap_convs` (``from_conv`` of each selected
  conv, state-dict keys unchanged) and its :class:`ConvSwapReport`;
* :mod:`.stock_init`: ``init_weights`` of a swapped model = the stock
  model's init, then ``from_conv``;
* :mod:`.build_hook`: ``MODELS.build`` honours the ``conv_swap`` key
  (installed when this package is imported: an upstream change listed
  with the others, :mod:`mmconvplug.compat`);
* :func:`conv_table`: every conv of a model, to write patterns.

The fold of a swapped model loads ``strict=True`` into the config without
the block: ``tools/fold.py`` writes that stock config as the deploy config.
"""
from mmconvplug.compat import install_upstream_change

from . import build_hook
from .build_hook import CONV_SWAP_KEY, build_hook_installed, install_build_hook
from .report import ConvSwapReport, SkippedConv, SwappedConv, conv_table
from .spec import (
    ConvSwapConfigError,
    ConvSwapSpec,
    parse_conv_swap,
    parse_conv_swaps,
    swappable_variants,
)
from .swap_convs import conv_swap_reports, swap_convs, swapped_layer_names

install_upstream_change(build_hook.CHANGE)

__all__ = [
    'CONV_SWAP_KEY', 'ConvSwapConfigError', 'ConvSwapReport', 'ConvSwapSpec',
    'SkippedConv', 'SwappedConv', 'build_hook_installed', 'conv_swap_reports',
    'conv_table',
    'install_build_hook', 'parse_conv_swap', 'parse_conv_swaps',
    'swap_convs', 'swappable_variants', 'swapped_layer_names'
]
