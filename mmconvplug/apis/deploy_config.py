"""Turn a training config into the deploy config of its folded checkpoint.

For every conv type that folded (per the :class:`FoldReport`) and none of
whose layers stayed, each ``conv_cfg=dict(type=...)`` becomes ``None`` (the
layer is built as the plain ``nn.Conv2d`` the fold produced) and each
``conv_swap`` block of that type is removed (the swap put variants where
the stock model has plain convs, under the same keys, so the folded weights
load into the model built without it). A model type registered as a
deprecated alias (it offers a ``replacement_cfg`` classmethod, e.g.
``SSDVGGConvCfg``) is first rewritten into its replacement. mmconvplug's
own hooks (``FoldHook``, ``CheckpointFitHook``; in ``custom_hooks`` or
``default_hooks``) and the ``strict`` argument of ``Pretrained`` inits
(stock mmengine's initializer does not take it) are dropped, and when
nothing in the config needs the plugin any more, ``mmconvplug`` is removed
from ``custom_imports``: the deploy config then runs with stock mmdet /
mmseg tools, and for a model whose variants all came from ``conv_swap`` it
is the stock config.
"""
import copy
from typing import Any, Iterable, Set

from mmengine.config import Config
from mmengine.registry import MODELS

from mmconvplug.fold.report import FoldReport
from mmconvplug.swap.build_hook import CONV_SWAP_KEY
from mmconvplug.utils.config_walk import config_types, map_config, type_name

from .config import (
    custom_import_names,
    is_plugin_module,
    plugin_type_names,
    plugin_types_used,
)

#: Our hooks that only make sense with the unfolded model and the plugin
#: (with the two 0.2.0 names of ``CheckpointFitHook``, so an old config
#: still deploys).
PLUGIN_ONLY_HOOKS = ('FoldHook', 'CheckpointFitHook', 'CheckpointGuardHook',
                     'CheckpointKeysHook')

#: ``Pretrained`` init arguments only mmconvplug's initializer takes.
PLUGIN_ONLY_PRETRAINED_ARGS = ('strict', )


def _without_folded_swaps(conv_swap: Any, folded_types: Set[str]) -> Any:
    """A ``conv_swap`` value without its blocks of folded types (None when
    none is left)."""
    blocks = conv_swap if isinstance(conv_swap, (list, tuple)) else [
        conv_swap
    ]
    kept = [
        block for block in blocks
        if not (isinstance(block, dict)
                and type_name(block.get('type')) in folded_types)
    ]
    if not kept:
        return None
    return kept if isinstance(conv_swap, (list, tuple)) else kept[0]


def _upgrade_deprecated(node: dict) -> dict:
    """A deprecated alias type's config rewritten into its replacement."""
    cls = MODELS.module_dict.get(type_name(node.get('type')))
    replacement_cfg = getattr(cls, 'replacement_cfg', None)
    return replacement_cfg(node) if callable(replacement_cfg) else node


def _plain_convs(folded_types: Set[str]):
    """The rewrite (for :func:`~mmconvplug.utils.config_walk.map_config`)
    of one model-config dict: folded ``conv_cfg`` types set to None, folded
    ``conv_swap`` blocks removed, no plugin-only ``Pretrained`` argument."""

    def rewrite(node: dict) -> dict:
        node = dict(_upgrade_deprecated(node))
        conv_cfg = node.get('conv_cfg')
        if (isinstance(conv_cfg, dict)
                and type_name(conv_cfg.get('type')) in folded_types):
            node['conv_cfg'] = None
        if CONV_SWAP_KEY in node:
            conv_swap = _without_folded_swaps(node.pop(CONV_SWAP_KEY),
                                              folded_types)
            if conv_swap is not None:
                node[CONV_SWAP_KEY] = conv_swap
        if node.get('type') == 'Pretrained':
            for key in PLUGIN_ONLY_PRETRAINED_ARGS:
                node.pop(key, None)
        return node

    return rewrite


def _without_plugin_import(cfg: dict) -> Any:
    kept = [name for name in custom_import_names(cfg)
            if not is_plugin_module(name)]
    if not kept:
        return None
    return dict(cfg['custom_imports'], imports=kept)


def _plugin_hook(hook: Any) -> bool:
    return (isinstance(hook, dict)
            and type_name(hook.get('type')) in PLUGIN_ONLY_HOOKS)


def make_deploy_config(cfg: Config, report: FoldReport,
                       variant_types: Iterable[str]) -> Config:
    """The config that builds the folded model of ``cfg``'s model.

    Args:
        cfg: the training config (already merged with any --cfg-options).
        report: what ``fold_model(..., plain_conv_only=True)`` did.
        variant_types: names of every registered conv variant type.
    """
    variant_types = set(variant_types)
    kept_types = {layer.type for layer in report.kept}
    # A variant type absent from the model (e.g. conv_cfg of an unused head)
    # builds nothing: every type with no kept layer becomes a plain conv.
    folded_types = ({layer.from_type for layer in report.folded}
                    | variant_types) - kept_types
    deploy = copy.deepcopy(cfg.to_dict())
    deploy['model'] = map_config(deploy['model'], _plain_convs(folded_types))
    deploy['custom_hooks'] = [
        hook for hook in deploy.get('custom_hooks') or []
        if not _plugin_hook(hook)
    ]
    if isinstance(deploy.get('default_hooks'), dict):
        deploy['default_hooks'] = {
            name: hook
            for name, hook in deploy['default_hooks'].items()
            if not _plugin_hook(hook)
        }
    deploy['load_from'] = None
    deploy['resume'] = False
    if deploy.get('custom_imports') and not (config_types(deploy)
                                             & plugin_type_names()):
        remaining = _without_plugin_import(deploy)
        if remaining is None:
            del deploy['custom_imports']
        else:
            deploy['custom_imports'] = remaining
    return Config(deploy)


__all__ = ['PLUGIN_ONLY_HOOKS', 'make_deploy_config', 'plugin_types_used']
