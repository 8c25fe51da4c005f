"""Check a config before anything is built, and say how to fix what's wrong.

Building a Runner from a broken config fails late (after the model is built
and sometimes after the first epoch, when validation starts) and with
messages from deep inside mmengine. :func:`check_config` looks at the config
first:

* every ``conv_cfg`` type is registered (else a ``ValueError`` listing the
  conv types that are);
* the ``data_root``, ``ann_file`` and ``data_prefix`` paths of the
  dataloaders the run will build exist (else a ``FileNotFoundError`` naming
  each key and path);
* a keypoint head predicts as many keypoints as the dataset metainfo has
  names, flip indices and OKS sigmas (else a ``KeypointCountError`` naming
  all four lengths);
* a distributed launch on a machine without CUDA does not ask for ``nccl``;
* a config that uses mmconvplug types without
  ``custom_imports=dict(imports=['mmconvplug'])`` gets a
  :class:`MissingCustomImportsWarning`: our tools import the plugin
  themselves, but the stock mmdet/mmseg tools would fail with
  "X is not in the model registry".

``tools/train.py`` calls ``check_config(cfg)``; ``tools/test.py`` calls
``check_config(cfg, phase='test')``.
"""
import difflib
import os.path as osp
import warnings
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS, Registry
from torch import nn

from mmconvplug.convs.base import ConvAttributesMixin
from mmconvplug.keypoint.config_check import check_keypoint_config
from mmconvplug.swap.build_hook import CONV_SWAP_KEY
from mmconvplug.swap.spec import parse_conv_swaps
from mmconvplug.utils.config_walk import type_name, walk_config

from .config import imports_plugin, plugin_type_names

TINY_DATA_HINT = ('generate the tiny datasets with '
                  '`python tools/make_tiny_datasets.py` (they go under '
                  'data/tiny/), or set data_root to where the dataset lives, '
                  'e.g. --cfg-options {key}.data_root=/path/to/dataset/')

#: The dataloaders each phase builds (``train`` also validates).
PHASE_DATALOADERS = {
    'train': (('train_dataloader', 'train_cfg'), ('val_dataloader',
                                                  'val_cfg')),
    'val': (('val_dataloader', 'val_cfg'), ),
    'test': (('test_dataloader', 'test_cfg'), ),
}


class MissingCustomImportsWarning(UserWarning):
    """The config uses mmconvplug types but does not import mmconvplug."""


def _scope_registry(cfg: Config) -> Any:
    """The MODELS registry ``build_conv_layer`` will search for this config."""
    scope = cfg.get('default_scope', None)
    if scope is None:
        return MODELS
    with MODELS.switch_scope_and_registry(scope) as registry:
        return registry


def _registry_chain(registry: Registry) -> List[Registry]:
    chain = []
    while registry is not None:
        chain.append(registry)
        registry = registry.parent
    return chain


def _is_conv_layer(cls: Any) -> bool:
    if not isinstance(cls, type):
        return False
    if issubclass(cls, (nn.modules.conv._ConvNd, ConvAttributesMixin)):
        return True
    try:
        from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    except ImportError:
        return False
    return issubclass(cls, (DeformConv2d, ModulatedDeformConv2d))


def registered_conv_types(registry: Optional[Registry] = None) -> List[str]:
    """Names usable as ``conv_cfg=dict(type=...)`` (sorted)."""
    names = set()
    for each in _registry_chain(registry or MODELS):
        each.import_from_location()
        names.update(name for name, cls in each.module_dict.items()
                     if _is_conv_layer(cls))
    return sorted(names)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    by_lower = {each.lower(): each for each in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f' Did you mean {by_lower[close[0]]!r}?' if close else ''


def check_conv_types(cfg: Config) -> None:
    """Raise ``ValueError`` for a ``conv_cfg`` type no registry knows."""
    registry = _scope_registry(cfg)
    for key_path, value in walk_config(cfg.to_dict()):
        if not key_path.endswith('conv_cfg') or not isinstance(value, dict):
            continue
        conv_type = value.get('type')
        if not isinstance(conv_type, str):
            continue  # a class object, or no type (mmcv then uses Conv2d)
        if registry.get(conv_type) is not None:
            continue
        known = registered_conv_types(registry)
        hint = _did_you_mean(conv_type, known)
        if MODELS.get('DOConv') is None:
            hint += (" mmconvplug's convs are not registered in this process: "
                    "add custom_imports=dict(imports=['mmconvplug'], "
                    'allow_failed_imports=False) to the config.')
        raise ValueError(
            f'{key_path}: conv type {conv_type!r} is not registered '
            f'(searched the {registry.scope!r} scope and its parents). '
            f'Registered conv types: {", ".join(known)}. Fix the spelling, '
            f'or import the module that registers it.{hint}')


def _is_local(path: str) -> bool:
    return '://' not in path


def _join(data_root: Optional[str], path: str) -> str:
    if data_root and not osp.isabs(path):
        return osp.join(data_root, path)
    return path


def _dataset_paths(dataset: Any,
                   key_path: str) -> Iterator[Tuple[str, str, Optional[str]]]:
    """Yield ``(key, path, data_root)`` for every local path a dataset reads.

    Follows dataset wrappers (``dataset=`` / ``datasets=[...]``).
    """
    if not isinstance(dataset, dict):
        return
    data_root = dataset.get('data_root')
    if isinstance(data_root, str) and data_root and _is_local(data_root):
        yield f'{key_path}.data_root', data_root, None
    ann_file = dataset.get('ann_file')
    if isinstance(ann_file, str) and ann_file and _is_local(ann_file):
        yield f'{key_path}.ann_file', _join(data_root, ann_file), data_root
    data_prefix = dataset.get('data_prefix')
    if isinstance(data_prefix, dict):
        for name, prefix in data_prefix.items():
            if isinstance(prefix, str) and _is_local(prefix):
                yield (f'{key_path}.data_prefix.{name}',
                       _join(data_root, prefix), data_root)
    inner = dataset.get('dataset')
    if inner is not None:
        yield from _dataset_paths(inner, f'{key_path}.dataset')
    for index, each in enumerate(dataset.get('datasets') or []):
        yield from _dataset_paths(each, f'{key_path}.datasets[{index}]')


def check_data_paths(cfg: Config, phase: str = 'train') -> None:
    """Raise ``FileNotFoundError`` listing every missing dataset path."""
    if phase not in PHASE_DATALOADERS:
        raise ValueError(
            f'check_config: phase={phase!r} is not one of '
            f'{sorted(PHASE_DATALOADERS)}. Use phase="train" for training '
            '(checks train and val data) or phase="test" for testing.')
    missing = []
    for loader_key, loop_key in PHASE_DATALOADERS[phase]:
        loader = cfg.get(loader_key)
        if not loader or (phase == 'train' and loader_key != 'train_dataloader'
                          and not cfg.get(loop_key)):
            continue
        missing_roots = set()
        for key, path, data_root in _dataset_paths(
                loader.get('dataset'), f'{loader_key}.dataset'):
            if osp.exists(path) or data_root in missing_roots:
                continue  # exists, or under a data_root already reported
            if key.endswith('.data_root'):
                missing_roots.add(path)
            root_note = f" (data_root={data_root!r})" if data_root else ''
            missing.append(f'  {key}: {path!r} does not exist{root_note}')
    if missing:
        first_loader = missing[0].split('.dataset')[0].strip()
        raise FileNotFoundError(
            'The config points at dataset files that do not exist:\n' +
            '\n'.join(missing) + '\nTo fix: ' +
            TINY_DATA_HINT.format(key=f'{first_loader}.dataset') + '.')


def check_custom_imports(cfg: Config) -> List[str]:
    """Warn when the config uses mmconvplug types without importing it.

    Returns the mmconvplug type names the config uses (empty if none, or if
    the config imports mmconvplug).
    """
    if imports_plugin(cfg):
        return []
    ours = plugin_type_names()
    used = sorted({
        value['type']
        for _, value in walk_config(cfg.to_dict())
        if isinstance(value, dict) and isinstance(value.get('type'), str)
        and type_name(value['type']) in ours
    })
    if used:
        warnings.warn(
            f'The config uses mmconvplug types ({", ".join(used)}) but has '
            'no custom_imports for mmconvplug. mmconvplug\'s tools import '
            'it themselves, but the stock mmdet/mmseg tools (and '
            'Runner.from_cfg in your own scripts) will fail with '
            f'"{used[0]} is not in the ... registry". Add '
            "custom_imports = dict(imports=['mmconvplug'], "
            'allow_failed_imports=False) to the config.',
            MissingCustomImportsWarning,
            stacklevel=3)
    return used


def check_dist_backend(cfg: Config) -> None:
    """A distributed launch without CUDA cannot use the ``nccl`` backend."""
    launcher = cfg.get('launcher', 'none') or 'none'
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.get('env_cfg') or {}
    backend = (env_cfg.get('dist_cfg') or {}).get('backend', 'nccl')
    if backend == 'nccl':
        raise ValueError(
            f"env_cfg.dist_cfg.backend='nccl' with launcher={launcher!r}, but "
            'this machine has no CUDA device; nccl needs GPUs. For '
            'distributed training on CPUs use gloo: add '
            "--cfg-options env_cfg.dist_cfg.backend=gloo (or set "
            "env_cfg = dict(dist_cfg=dict(backend='gloo')) in the config).")


def check_conv_swaps(cfg: Config) -> None:
    """Parse every ``conv_swap`` block of ``cfg.model`` before building.

    Catches a wrong variant name, filter or ``from_conv`` argument up front
    (as :class:`~mmconvplug.swap.spec.ConvSwapConfigError`, a ValueError);
    patterns that match no module can only be checked on the built model
    and are reported when it is built.
    """
    for key_path, node in walk_config(cfg.get('model'), 'model'):
        if isinstance(node, dict) and node.get(CONV_SWAP_KEY) is not None:
            try:
                parse_conv_swaps(node[CONV_SWAP_KEY])
            except ValueError as err:
                raise type(err)(f'{key_path}.{CONV_SWAP_KEY}: {err}') from err


def check_keypoint_counts(cfg: Config, phase: str = 'train') -> None:
    """A keypoint model predicts as many keypoints as its datasets have.

    See :func:`mmconvplug.keypoint.config_check.check_keypoint_config`
    (raises ``KeypointCountError``, a ValueError, naming every length).
    """
    check_keypoint_config(cfg, phase)


def check_config(cfg: Config, phase: str = 'train') -> List[str]:
    """Validate ``cfg`` before building the Runner; raise on the first problem.

    Args:
        cfg: the loaded config (after ``--cfg-options`` are merged and
            ``cfg.launcher`` is set).
        phase: ``'train'`` (checks train and val data), ``'val'`` or
            ``'test'``.

    Returns:
        The mmconvplug types used by a config that lacks ``custom_imports``
        (a :class:`MissingCustomImportsWarning` was issued for them).

    Raises:
        ValueError: unknown conv type; a malformed ``conv_swap`` block;
            a keypoint head whose ``num_keypoints`` differs from the
            dataset metainfo's keypoint lists (or those from each other);
            nccl requested without CUDA.
        FileNotFoundError: missing ``data_root`` / ``ann_file`` /
            ``data_prefix`` paths.
    """
    if not isinstance(cfg, (Config, ConfigDict, dict)):
        raise TypeError(
            f'check_config expects an mmengine Config, got {type(cfg)!r}; '
            'load one with Config.fromfile(path).')
    if isinstance(cfg, dict) and not isinstance(cfg, Config):
        cfg = Config(cfg)
    check_conv_types(cfg)
    check_conv_swaps(cfg)
    check_keypoint_counts(cfg, phase)
    check_data_paths(cfg, phase)
    check_dist_backend(cfg)
    return check_custom_imports(cfg)


__all__: Sequence[str] = [
    'MissingCustomImportsWarning', 'check_config', 'check_conv_swaps',
    'check_conv_types', 'check_keypoint_counts',
    'check_custom_imports', 'check_data_paths', 'check_dist_backend',
    'registered_conv_types'
]
