"""The swap of a config, without training (``mmconvplug swap``).

Builds the config's model the way the Runner does (``MODELS.build`` in the
config's default scope, no weights initialised or loaded, nothing
downloaded) and returns its swap reports, or lists the model's convs to
help write patterns.
"""
import copy
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from torch import nn
from torch.nn.modules.conv import _ConvNd

from mmconvplug.analysis import count_parameters, format_table
from mmconvplug.convs.base import is_conv_variant

from .build_hook import CONV_SWAP_KEY
from .report import ConvSwapReport, pair_text
from .swap_convs import conv_swap_reports


def has_conv_swap(node) -> bool:
    """True when a (model) config dict has a ``conv_swap`` block anywhere."""
    if isinstance(node, dict):
        return CONV_SWAP_KEY in node or any(
            has_conv_swap(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(has_conv_swap(v) for v in node)
    return False


def load_config(config: str,
                cfg_options: Optional[dict] = None) -> Config:
    """Read ``config`` and merge ``cfg_options`` (``--cfg-options``)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model_of(cfg: Config) -> nn.Module:
    """``cfg.model`` built in the config's scope (its library imported)."""
    scope = cfg.get('default_scope', None)
    if scope in ('mmdet', 'mmseg'):
        __import__(scope)
    init_default_scope(scope or 'mmengine')
    return MODELS.build(copy.deepcopy(cfg.model))


def swap_reports_of_config(cfg: Config) -> Tuple[nn.Module,
                                                 List[ConvSwapReport]]:
    """Build ``cfg.model`` and return it with its swap reports.

    Raises:
        ValueError: the model config has no ``conv_swap`` anywhere.
        ConvSwapConfigError: a block is malformed or matches nothing.
    """
    if not has_conv_swap(cfg.model.to_dict()):
        raise ValueError(
            'the config has no conv_swap block: add one to the model, e.g. '
            "model=dict(conv_swap=dict(type='DOConv', include=['backbone']))"
            ' (see README, "Using the plugin from your own config").')
    model = build_model_of(cfg)
    return model, conv_swap_reports(model)


def conv_table(model: nn.Module,
               patterns: Sequence[str] = ()) -> str:
    """Every conv of ``model`` (name, type, geometry, parameters)."""
    from .matching import first_match
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
