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

The code is :mod:`mmconvplug.cli.demo` (``mmconvplug demo``, the same
command line).
"""
import os.path as osp
import sys
import warnings
from typing import List, Optional

# mmengine imports pkg_resources; its deprecation notice would open the demo.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(REPO, 'pyproject.toml')) and REPO not in sys.path:
    sys.path.insert(0, REPO)  # a checkout: run its own package from anywhere

from mmconvplug.cli import demo as command  # noqa: E402
from mmconvplug.cli import standalone_main  # noqa: E402


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
