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
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

from mmconvplug.datagen import TINY_DATASETS, make_tiny_dataset


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate tiny COCO / VOC / Cityscapes datasets '
        '(synthetic shapes, real formats).')
    parser.add_argument('--root', default='data/tiny',
                        help='output folder (default: data/tiny)')
    parser.add_argument('--which', nargs='+', default=['voc', 'coco',
                                                       'cityscapes'],
                        choices=sorted(TINY_DATASETS),
                        help='datasets to write (default: voc coco cityscapes)')
    parser.add_argument('--num-train', type=int, default=64,
                        help='training images per dataset (default: 64)')
    parser.add_argument('--num-val', type=int, default=16,
                        help='validation images per dataset (default: 16)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('W', 'H'),
                        help='image width and height (default: 128 128, '
                        'Cityscapes 128 64)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed: same seed, same files (default: 0)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for name in args.which:
        start = time.perf_counter()
        try:
            paths = make_tiny_dataset(name, args.root, args.num_train,
                                      args.num_val, args.size, args.seed)
        except ValueError as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        where = paths.get('devkit') or osp.commonpath(list(paths.values()))
        print(f'{name}: {args.num_train} train + {args.num_val} val images '
              f'in {time.perf_counter() - start:.1f}s -> {where}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
