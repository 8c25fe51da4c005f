"""A config's ``conv_swap``, without training (``mmconvplug swap``).

Builds the config's model as the Runner does (:func:`~mmconvplug.apis.
init_model`: its scope, no weights initialised or loaded, nothing
downloaded) and returns its swap reports.
"""
from typing import Any, List, Tuple

from mmengine.config import Config
from torch import nn

from mmconvplug.swap import CONV_SWAP_KEY, ConvSwapReport, conv_swap_reports
from mmconvplug.utils.config_walk import walk_config

from .model import init_model


def has_conv_swap(node: Any) -> bool:
    """True when a (model) config has a ``conv_swap`` block anywhere."""
    return any(isinstance(value, dict) and CONV_SWAP_KEY in value
               for _, value in walk_config(node))


def swap_reports_of_config(
        cfg: Config) -> Tuple[nn.Module, List[ConvSwapReport]]:
    """Build ``cfg.model`` and return it with its swap reports.

    Raises:
        ValueError: the model config has no ``conv_swap`` anywhere.
        ConvSwapConfigError: a block is malformed or matches nothing.
    """
    if not has_conv_swap(cfg.model.to_dict()):
        raise ValueError(
            'the config has no conv_swap block: add one to the model, e.g. '
            "model=dict(conv_swap=dict(type='DOConv', include=['backbone']))"
            ' (see docs/get_started.md, "Using the plugin from your own '
            'config").')
    model = init_model(cfg)
    return model, conv_swap_reports(model)
