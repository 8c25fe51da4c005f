"""Generate the tiny synthetic datasets in the real on-disk formats.

    python tools/make_tiny_datasets.py --root data/tiny \
        --which voc coco cityscapes --num-train 64 --num-val 16 \
        --size 128 128 --seed 0

Writes ``<root>/VOCdevkit`` (VOC2007 + VOC2012), ``<root>/coco`` (instances
and person_keypoints json, train2017/ val2017/), ``<root>/coco_keypoints``
(person-heavy COCO for keypoint models, only with ``--which coco-keypoints``),
``<root>/crowdpose`` (14 keypoints in the published CrowdPose layout and
quirks, only with ``--which crowdpose``) and ``<root>/cityscapes``
(leftImg8bit/ gtFine/). The configs under
``configs/_base_/datasets/tiny_*.py`` point at these folders; the same configs
read the real datasets by changing ``data_root``.

The code is :mod:`mmconvplug.cli.datasets` (``mmconvplug datasets``, the
same command line).
"""
import sys
from typing import List, Optional

from mmconvplug.cli import datasets as command
from mmconvplug.cli import standalone_main


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
