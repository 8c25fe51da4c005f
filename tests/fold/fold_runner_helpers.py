"""Tiny real runs for the fold tests: demo configs on generated tiny data.

The configs are the project's CPU demos (``configs/demo``: DeepLabv3+
ResNetV1c-18 on tiny Cityscapes, SSD on a narrow ResNet-18 on tiny VOC),
read by the stock mmseg / mmdet datasets and evaluated by the real
IoUMetric / VOCMetric, shrunk further here (few iterations, few images).
"""
import importlib.util
import os.path as osp
import time
from typing import List, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS

from mmconvplug.datagen import make_tiny_cityscapes, make_tiny_voc
from mmconvplug.datagen.config_paths import set_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f'fold_tests_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variant_conv_cfg() -> dict:
    """The conv variant the runs train with: DO-Conv."""
    return dict(type='DOConv')


def make_data(root: str, which: str) -> str:
    """Generate a tiny dataset under ``root``; return the config data_root."""
    if which == 'cityscapes':
        data_root = osp.join(root, 'cityscapes')
        make_tiny_cityscapes(data_root, num_train=4, num_val=3)
        return data_root
    out = make_tiny_voc(root, num_train=4, num_val=3)
    return out['devkit']


def tiny_cfg(which: str, data_root: str, work_dir: str,
             conv_cfg: Optional[dict], iters: int = 4,
             val_interval: Optional[int] = None,
             custom_hooks: Optional[List[dict]] = None) -> Config:
    """A short-run copy of the demo config for ``which`` dataset."""
    name = ('deeplabv3plus_r18_tiny_cityscapes.py' if which == 'cityscapes'
            else 'ssd_r18_tiny_voc.py')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name))
    set_data_root(cfg, data_root if data_root.endswith('/') else data_root + '/')
    cfg.model.backbone.conv_cfg = conv_cfg
    if which == 'cityscapes':  # a quarter-width ResNetV1c-18: fast on CPU
        cfg.model.backbone.update(stem_channels=16, base_channels=16)
        cfg.model.decode_head.update(in_channels=128, channels=16,
                                     c1_in_channels=16, c1_channels=8)
        cfg.model.auxiliary_head.update(in_channels=64, channels=8)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = val_interval or iters
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.train_dataloader.batch_size = 2
    cfg.val_dataloader.batch_size = 1
    cfg.test_dataloader = cfg.val_dataloader
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters, save_last=True)
    cfg.log_processor = dict(type='LogProcessor', window_size=1,
                             by_epoch=False)
    cfg.custom_hooks = custom_hooks or []
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{osp.basename(work_dir)}_{time.time_ns()}'
    return cfg


def _loads_weights(key: str, value) -> bool:
    return (key == 'pretrained' and value is not None) or (
        key == 'init_cfg' and 'Pretrained' in str(value))


def _without_pretrained(node):
    """``node`` with every ``init_cfg`` / mmseg ``pretrained`` that loads
    weights set to None."""
    if isinstance(node, dict):
        return {
            key: (None if _loads_weights(key, value) else
                  _without_pretrained(value))
            for key, value in node.items()
        }
    if isinstance(node, (list, tuple)):
        return type(node)(_without_pretrained(v) for v in node)
    return node


def save_random_checkpoint(cfg: Config, path: str) -> str:
    """An mmengine-style checkpoint of the freshly built (seeded) model.

    Initialised as the Runner does (``init_weights``), minus the stock
    configs' Pretrained init (a download), then slightly perturbed. Skipping
    ``init_weights`` is not an option: mmdet's SSD ``L2Norm`` allocates its
    weight uninitialised and only sets it there.
    """
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model_cfg = ConfigDict(_without_pretrained(cfg.model.to_dict()))
    model = MODELS.build(model_cfg)
    model.init_weights()
    # DOConv starts as an exact identity re-parameterisation (D = I); move
    # every weight a little, as training would, so folds are non-trivial.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.01)
    torch.save({'meta': {'note': 'fold test'},
                'state_dict': model.state_dict()}, path)
    return path
