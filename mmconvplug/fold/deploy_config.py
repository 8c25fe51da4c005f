"""Turn a training config into the deploy config of its folded checkpoint.

For every conv type that folded (per the :class:`FoldReport`) and none of
whose layers stayed, each ``conv_cfg=dict(type=...)`` becomes ``None`` (the
layer is built as the plain ``nn.Conv2d`` the fold produced) and each
``conv_swap`` block of that type is removed (the swap put variants where
the stock model has plain convs, under the same keys, so the folded weights
load into the model built without it). A model type registered as a
deprecated alias (it offers a ``replacement_cfg`` classmethod, e.g.
``SSDVGGConvCfg``) is first rewritten into its replacement. mmconvplug's
own hooks (``FoldHook``, ``CheckpointGuardHook``, ``CheckpointKeysHook``;
in ``custom_hooks`` or ``default_hooks``) are dropped, and when
nothing in the config needs the plugin any more, ``mmconvplug`` is removed
from ``custom_imports``: the deploy config then runs with stock mmdet /
mmseg tools, and for a model whose variants all came from ``conv_swap`` it
is the stock config.
"""
import copy
from typing import Any, Iterable, Set

from mmengine.config import Config
from mmengine.registry import (DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS)

from mmconvplug.swap.build_hook import CONV_SWAP_KEY

from .report import FoldReport

#: Our hooks that only make sense with the unfolded model and the plugin.
PLUGIN_ONLY_HOOKS = ('FoldHook', 'CheckpointGuardHook', 'CheckpointKeysHook')


def mmconvplug_type_names() -> Set[str]:
    """Every type name mmconvplug registers (models, hooks, datasets...)."""
    names = set()
    for registry in (MODELS, HOOKS, DATASETS, METRICS, TRANSFORMS):
        names.update(
            name for name, cls in registry.module_dict.items()
            if getattr(cls, '__module__', '').startswith('mmconvplug'))
    return names


def _short(type_name: Any) -> Any:
    return type_name.split('.')[-1] if isinstance(type_name, str) else type_name


def _without_folded_swaps(conv_swap: Any, folded_types: Set[str]) -> Any:
    """A ``conv_swap`` value without its blocks of folded types (None when
    none is left)."""
    blocks = conv_swap if isinstance(conv_swap, (list, tuple)) else [
        conv_swap
    ]
    kept = [
        block for block in blocks
        if not (isinstance(block, dict)
                and _short(block.get('type')) in folded_types)
    ]
    if not kept:
        return None
    return kept if isinstance(conv_swap, (list, tuple)) else kept[0]


def _upgrade_deprecated(node: dict) -> dict:
    """A deprecated alias type's config rewritten into its replacement."""
    cls = MODELS.module_dict.get(_short(node.get('type')))
    replacement_cfg = getattr(cls, 'replacement_cfg', None)
    return replacement_cfg(node) if callable(replacement_cfg) else node


def _plain_convs(node: Any, folded_types: Set[str]) -> Any:
    """Copy of a model config with folded conv_cfg types set to None and
    folded conv_swap blocks removed."""
    if isinstance(node, (list, tuple)):
        return type(node)(_plain_convs(v, folded_types) for v in node)
    if not isinstance(node, dict):
        return node
    node = _upgrade_deprecated(dict(node))
    conv_swap = node.pop(CONV_SWAP_KEY, None)
    node = {k: _plain_convs(v, folded_types) for k, v in node.items()}
    conv_cfg = node.get('conv_cfg')
    if (isinstance(conv_cfg, dict)
            and _short(conv_cfg.get('type')) in folded_types):
        node['conv_cfg'] = None
    conv_swap = _without_folded_swaps(conv_swap, folded_types)
    if conv_swap is not None:
        node[CONV_SWAP_KEY] = conv_swap
    return node


def _uses_types(node: Any, names: Set[str]) -> bool:
    if isinstance(node, dict):
        if _short(node.get('type')) in names:
            return True
        return any(_uses_types(v, names) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(_uses_types(v, names) for v in node)
    return False


def _without_plugin_import(custom_imports: dict) -> Any:
    imports = custom_imports.get('imports', [])
    if isinstance(imports, str):
        imports = [imports]
    kept = [name for name in imports
            if not (name == 'mmconvplug' or name.startswith('mmconvplug.'))]
    if not kept:
        return None
    return dict(custom_imports, imports=kept)


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
    deploy['model'] = _plain_convs(deploy['model'], folded_types)
    deploy['custom_hooks'] = [
        hook for hook in deploy.get('custom_hooks') or []
        if _short(hook.get('type')) not in PLUGIN_ONLY_HOOKS
    ]
    if isinstance(deploy.get('default_hooks'), dict):
        deploy['default_hooks'] = {
            name: hook
            for name, hook in deploy['default_hooks'].items()
            if not (isinstance(hook, dict)
                    and _short(hook.get('type')) in PLUGIN_ONLY_HOOKS)
        }
    deploy['load_from'] = None
    deploy['resume'] = False
    if deploy.get('custom_imports') and not _uses_types(
            deploy, mmconvplug_type_names()):
        remaining = _without_plugin_import(deploy['custom_imports'])
        if remaining is None:
            del deploy['custom_imports']
        else:
            deploy['custom_imports'] = remaining
    return Config(deploy)


def plugin_types_used(cfg: Config) -> Set[str]:
    """mmconvplug type names the config still refers to."""
    names = mmconvplug_type_names()
    found = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if _short(node.get('type')) in names:
                found.add(_short(node['type']))
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(cfg.to_dict())
    return found
