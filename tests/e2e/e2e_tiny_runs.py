"""Helpers for the end-to-end tests: point a config at freshly generated tiny
data, train it with tools/train.py, and read back the Runner's scalars."""
import glob
import importlib.util
import json
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config

from mmconvplug.datagen.config_paths import set_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f'mmconvplug_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(config: str, data_root: str, work_dir: str, iters: int,
                conv_cfg: Optional[dict], fold_hook: bool,
                batch_size: int) -> str:
    """Write a runnable copy of ``configs/<config>`` for a short run and
    return its path: data under ``data_root``, ``iters`` iterations with one
    validation at the end, the variant's convs, ``FoldHook`` on request."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    set_data_root(cfg, data_root)
    if conv_cfg is not None:
        cfg.model.backbone.conv_cfg = conv_cfg
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0,
             end=5),
        dict(type='CosineAnnealingLR', eta_min=1e-4, by_epoch=False,
             begin=5, end=iters)
    ]
    cfg.train_dataloader.batch_size = batch_size
    cfg.default_hooks.logger.interval = 2
    cfg.log_processor = dict(type='LogProcessor', window_size=2,
                             by_epoch=False)
    cfg.custom_hooks = [dict(type='FoldHook')] if fold_hook else []
    cfg.randomness = dict(seed=0)
    # The visualizer is a process-wide singleton looked up by name; a name
    # of its own keeps each run's scalars in its own work_dir.
    cfg.visualizer.name = f'visualizer:{work_dir}'
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path


def read_scalars(work_dir: str) -> List[Dict]:
    """Every record of the run's ``vis_data/scalars.json``."""
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def train_losses(records: List[Dict]) -> List[float]:
    return [r['loss'] for r in records if 'loss' in r]


def read_log(work_dir: str) -> str:
    (path, ) = glob.glob(osp.join(work_dir, '*', '*.log'))
    return open(path).read()
