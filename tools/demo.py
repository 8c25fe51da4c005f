"""The mmconvplug demo: train conv variants of a small model, fold, test, time.

    python tools/demo.py [--task det|seg|kpt] [--iters N] [--out DIR]
                         [--variants baseline doconv refconv]

For ``--task det`` (the default, what ``make demo`` runs) it

1. generates the tiny VOC set (``data/tiny/VOCdevkit``; reused when present),
2. trains a small SSD (stock mmdet SSD neck and head, ResNet-18 at 128 px,
   ``configs/demo/ssd_r18_tiny_voc.py``) three times with the real mmengine
   Runner: plain convs, ``conv_cfg=dict(type='DOConv')`` and
   ``conv_cfg=dict(type='RefConv')``,
3. tests each model with the stock VOC metric, folds it into plain convs
   (``mmconvplug.fold_model``), tests the folded model again,
4. times inference of the folded models against the plain baseline,
5. prints a table and writes ``<out>/demo.png`` (loss curves, metric and
   latency) and ``<out>/results.json``.

``--task seg`` does the same for DeepLabv3+ (ResNet-18) on tiny Cityscapes
(mIoU); ``--task kpt`` for Keypoint R-CNN on tiny COCO person keypoints.
The logic lives in :mod:`mmconvplug.demo`.

About 1-2 minutes on a quiet 2-core CPU for ``--task det``. On a machine
shared with other busy processes run it with ``OMP_NUM_THREADS=1``: torch's
worker threads otherwise spin against the other jobs.
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import List, Optional

# mmengine imports pkg_resources; its deprecation notice would open the demo.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # run from anywhere: the package is editable

import mmconvplug  # noqa: E402,F401  (registers the variants)
from mmconvplug.demo import (TASKS, DemoOptions, demo_variants,  # noqa: E402
                             run_demo)
from mmconvplug.demo.tasks import resolve_config  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train plain and conv-variant versions of a small model '
        'on a tiny dataset, fold them, test and time them.')
    parser.add_argument('--task', choices=sorted(TASKS), default='det',
                        help='det: SSD on tiny VOC (default); seg: '
                        'DeepLabv3+ on tiny Cityscapes; kpt: Keypoint R-CNN '
                        'on tiny COCO keypoints')
    parser.add_argument('--iters', type=int,
                        help='training iterations per variant (default: '
                        'det 120, seg 80, kpt 200)')
    parser.add_argument('--out', default='outputs/demo',
                        help='output folder (default: outputs/demo)')
    parser.add_argument('--variants', nargs='+',
                        default=['baseline', 'doconv', 'refconv'],
                        choices=list(demo_variants()),
                        help='variants to train (default: baseline doconv '
                        'refconv); the first one is the timing reference')
    parser.add_argument('--data-root', default='data/tiny',
                        help='where the tiny datasets live (default: '
                        'data/tiny); generated when missing')
    parser.add_argument('--num-train', type=int,
                        help='training images to generate (default per task)')
    parser.add_argument('--num-val', type=int,
                        help='validation images to generate (default per '
                        'task)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed for data and training (default: 0)')
    parser.add_argument('--timing-rounds', type=int, default=5,
                        help='interleaved rounds of inference timing '
                        '(default: 5)')
    args = parser.parse_args(argv)
    for name in ('iters', 'num_train', 'num_val', 'timing_rounds'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got '
                         f'{value}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        resolve_config(TASKS[args.task])
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    run_demo(DemoOptions(**vars(args)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
