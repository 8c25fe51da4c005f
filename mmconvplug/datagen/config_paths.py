"""Point a loaded config at another copy of its dataset (``data_root``).

Stock configs bake ``data_root`` into every dataset dict and into the COCO
evaluators' ``ann_file`` when they are parsed, so overriding the top-level
``data_root`` variable afterwards changes nothing. :func:`set_data_root`
rewrites every place instead: the datasets of the train / val / test
dataloaders (through ``ConcatDataset`` / ``RepeatDataset`` wrappers) and the
evaluators' ``ann_file`` paths that start with the old root.
"""
from __future__ import annotations

import os.path as osp
from typing import List

from mmengine.config import Config

from mmconvplug.utils.config_walk import leaf_datasets

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_EVALUATORS = ('val_evaluator', 'test_evaluator')


def _with_slash(path: str) -> str:
    return path if path.endswith(('/', '\\')) else path + '/'


def set_data_root(cfg: Config, data_root: str) -> List[str]:
    """Replace every dataset's ``data_root`` in ``cfg`` with ``data_root``.

    Evaluator ``ann_file`` paths under the old root move along. Returns the
    old roots that were replaced. Raises ``ValueError`` when the config has
    no dataset with a ``data_root`` to replace.
    """
    new_root = _with_slash(data_root)
    old_roots: List[str] = []
    for key in _LOADERS:
        loader = cfg.get(key, None)
        if not loader:
            continue
        for _, ds in leaf_datasets(loader.get('dataset')):
            if 'data_root' in ds:
                old_roots.append(_with_slash(ds['data_root']))
                ds['data_root'] = new_root
    if not old_roots:
        raise ValueError(
            'set_data_root: the config has no train/val/test dataset with a '
            'data_root to replace; give its datasets a data_root (as the '
            'stock mmdet/mmseg dataset configs do).')
    for key in _EVALUATORS:
        evaluators = cfg.get(key, None)
        if evaluators is None:
            continue
        for ev in evaluators if isinstance(evaluators, list) else [evaluators]:
            ann = ev.get('ann_file') if isinstance(ev, dict) else None
            if not ann:
                continue
            for old in old_roots:
                if ann.startswith(old):
                    ev['ann_file'] = osp.join(new_root, ann[len(old):])
                    break
    cfg['data_root'] = new_root
    return sorted(set(old_roots))
