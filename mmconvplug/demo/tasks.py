"""What differs between the demo tasks, and the variants the demo trains."""
import datetime
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional

from mmengine.config import Config

from mmconvplug.apis import load_config
from mmconvplug.configs_path import configs_root
from mmconvplug.convs.base import conv_variants
from mmconvplug.datagen.config_paths import set_data_root


@dataclass(frozen=True)
class DemoTask:
    """One demo task.

    Args:
        config (str): Config path (glob) under the configs folder
            (:func:`mmconvplug.configs_path.configs_root`).
        dataset (str): Key of :data:`mmconvplug.datagen.TINY_DATASETS`.
        num_train (int): Default training images.
        num_val (int): Default validation images.
        iters (int): Default training iterations per variant.
        metric (str): Key of the test metric.
        metric_name (str): How the table names it.
        metric_scale (float): Factor to percent.
        chance (str): What guessing scores.
    """

    config: str
    dataset: str
    num_train: int
    num_val: int
    iters: int
    metric: str
    metric_name: str
    metric_scale: float
    chance: str


TASKS = {
    'det': DemoTask('demo/ssd_r18_tiny_voc.py', 'voc', 192, 48, 120,
                    'pascal_voc/mAP', 'mAP (VOC, %)', 100,
                    'random boxes score ~0 mAP'),
    'seg': DemoTask('demo/deeplabv3plus_r18_tiny_cityscapes.py',
                    'cityscapes', 64, 16, 80, 'mIoU', 'mIoU (%)', 1,
                    'uniform guessing over 19 classes ~ 2-5 mIoU'),
    'kpt': DemoTask('keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_coco.py',
                    'coco-keypoints', 96, 24, 200, 'coco/keypoints_mAP',
                    'keypoint AP', 100, 'random keypoints score ~0 AP'),
}


def demo_variants() -> Dict[str, Optional[dict]]:
    """``{name: conv_cfg}``: ``baseline`` (``nn.Conv2d``) and every
    registered conv variant, named in lower case (``doconv``, ...)."""
    variants: Dict[str, Optional[dict]] = {'baseline': None}
    variants.update({name.lower(): dict(type=name)
                     for name in conv_variants()})
    return variants


def resolve_config(task: DemoTask) -> str:
    """The task's config file.

    Raises:
        ValueError: this checkout does not have it.
    """
    root = configs_root()
    matches = sorted(glob.glob(osp.join(root, task.config)))
    if not matches:
        raise ValueError(
            f'--task needs the config {task.config}, which {root} does not '
            'have (the keypoint task needs mmconvplug.keypoint and its '
            'keypoint_rcnn/ tiny config); choose --task det or --task seg.')
    return matches[0]


def demo_config(config: str, variant: str, conv_cfg: Optional[dict],
                data_root: str, iters: int, out: str, seed: int) -> Config:
    """The task config, pointed at the tiny data, with the variant's convs,
    ``iters`` iterations and no validation during training (the demo tests
    after training, once unfolded and once folded)."""
    cfg = load_config(config)
    set_data_root(cfg, data_root)
    if conv_cfg is not None:
        cfg.model.backbone.conv_cfg = dict(conv_cfg)
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
    cfg.experiment_name = f'{variant}_{stamp}'
    # Visualizers are process-wide singletons looked up by name: one per
    # variant keeps each variant's scalars in its own work_dir.
    cfg.visualizer.name = cfg.experiment_name
    cfg.work_dir = osp.join(out, variant)
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    warmup = max(1, min(30, iters // 5))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=warmup),
        dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False,
             begin=warmup, end=iters)
    ]
    cfg.default_hooks.logger.interval = max(1, min(20, iters // 10))
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters,
        save_last=True, max_keep_ckpts=1)
    cfg.log_processor = dict(type='LogProcessor', window_size=10,
                             by_epoch=False)
    # The Runner logs its environment and the whole config at INFO when it
    # is built; keep that in the log file only, show training progress.
    cfg.log_level = 'WARNING'
    return cfg
