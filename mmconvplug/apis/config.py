"""Configs in: the one loader, the one scope rule, mmconvplug's type names.

* :func:`load_config`: a path, a ``<package>::<path>`` name
  (``mmdet::ssd/ssd300_coco.py``, ``mmseg::...``, ``mmconvplug::...``: the
  library's packaged configs) or a ``Config``, with ``--cfg-options``
  merged and its ``custom_imports`` imported;
* :func:`config_scope`: the registry scope a config's model is built in:
  its ``default_scope``, else :data:`DEFAULT_SCOPE`, the rule of mmengine's
  ``Runner``, so every tool builds what ``tools/train.py`` builds;
* :func:`plugin_type_names`: every type name mmconvplug registered (models,
  hooks, datasets, metrics, transforms);
* the config walker, :func:`~mmconvplug.utils.config_walk.walk_config` /
  :func:`~mmconvplug.utils.config_walk.map_config` (a leaf utility, so the
  layers below this one walk configs with it too).
"""
import copy
import importlib
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Set, Union

from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

from mmconvplug import registry
from mmconvplug.configs_path import config_file
from mmconvplug.utils.config_walk import config_types

#: The scope of a config without ``default_scope``: mmengine's root, as
#: ``Runner.from_cfg`` uses (mmconvplug registers everything there; stock
#: mmdet / mmseg types need the config's ``default_scope``).
DEFAULT_SCOPE = 'mmengine'

ConfigLike = Union[str, 'os.PathLike[str]', Config]


def config_path(name: Union[str, 'os.PathLike[str]']) -> str:
    """The file of a config name: ``mmconvplug::<path>`` (ours, installed or
    in the checkout), ``<package>::<path>`` (the package's ``.mim/configs``,
    e.g. ``mmdet::``, ``mmseg::``), or a path as it is."""
    name = os.fspath(name)
    if '::' not in name:
        return name
    package, relative = name.split('::', 1)
    if package == 'mmconvplug':
        return config_file(relative)
    library = importlib.import_module(package)
    return osp.join(osp.dirname(library.__file__), '.mim', 'configs',
                    relative)


def load_config(config: ConfigLike,
                cfg_options: Optional[dict] = None) -> Config:
    """The config ``config`` names, with ``cfg_options`` merged.

    Args:
        config (str | PathLike | Config): A file, a ``<package>::<path>``
            name (:func:`config_path`), or a ``Config`` (copied: the
            caller's is never changed).
        cfg_options (dict, optional): ``--cfg-options`` overrides.

    Returns:
        Config: Its ``custom_imports`` imported (``Config.fromfile`` does
        that for a file; for a ``Config`` it is done here).

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``config`` is none of these.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg.get('custom_imports'):
            import_modules_from_strings(**cfg.custom_imports)
    elif isinstance(config, (str, os.PathLike)):
        path = config_path(config)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'config {os.fspath(config)!r}: no such file ({path!r}).')
        cfg = Config.fromfile(path)
    else:
        raise TypeError(f'config must be a path or an mmengine Config, got '
                        f'{type(config).__name__}.')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def config_scope(cfg: Any) -> str:
    """The scope ``cfg``'s model is built in: ``default_scope``, else
    :data:`DEFAULT_SCOPE` (mmengine's ``Runner`` rule)."""
    return cfg.get('default_scope') or DEFAULT_SCOPE


def plugin_types() -> Dict[str, List[str]]:
    """``{registry name: sorted type names}`` mmconvplug registered in each
    of its registries (:mod:`mmconvplug.registry`). Names kept only to say
    they were removed (:func:`~mmconvplug.utils.removed.removed_type`) are
    left out."""
    found: Dict[str, List[str]] = {}
    for name in registry.__all__:
        names = sorted(
            type_name for type_name, cls in getattr(
                registry, name).module_dict.items()
            if getattr(cls, '__module__', '').startswith('mmconvplug')
            and not getattr(cls, 'mmconvplug_removed', False))
        if names:
            found[name] = names
    return found


def plugin_type_names() -> Set[str]:
    """Every type name mmconvplug registered (:func:`plugin_types`)."""
    return {name for names in plugin_types().values() for name in names}


def plugin_types_used(cfg: Any) -> Set[str]:
    """The mmconvplug type names ``cfg`` (a Config or dict) refers to."""
    node = cfg.to_dict() if isinstance(cfg, Config) else cfg
    return config_types(node) & plugin_type_names()


def custom_import_names(cfg: Any) -> List[str]:
    """The module names of ``cfg``'s ``custom_imports``."""
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    return [imports] if isinstance(imports, str) else list(imports)


def is_plugin_module(name: str) -> bool:
    """True for ``'mmconvplug'`` and its submodules."""
    return name == 'mmconvplug' or name.startswith('mmconvplug.')


def imports_plugin(cfg: Any) -> bool:
    """True when ``cfg``'s ``custom_imports`` import mmconvplug."""
    return any(map(is_plugin_module, custom_import_names(cfg)))


#: The hook that checks ``load_from`` / ``resume`` checkpoints.
CHECKPOINT_FIT_HOOK = 'CheckpointFitHook'


def has_checkpoint_fit_hook(cfg: Any) -> bool:
    """True when ``cfg`` has a ``CheckpointFitHook`` in ``default_hooks``
    or ``custom_hooks``."""
    hooks = list((cfg.get('default_hooks') or {}).values())
    hooks += list(cfg.get('custom_hooks') or [])
    return any(isinstance(hook, dict)
               and hook.get('type') == CHECKPOINT_FIT_HOOK for hook in hooks)


def add_checkpoint_fit_hook(cfg: Config) -> Config:
    """Give ``cfg`` (in place) a non-strict ``CheckpointFitHook`` in
    ``custom_hooks`` unless it has one (a paper config's strict one in
    ``default_hooks`` is kept as it is); returns ``cfg``."""
    if not has_checkpoint_fit_hook(cfg):
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type=CHECKPOINT_FIT_HOOK)
        ]
    return cfg
