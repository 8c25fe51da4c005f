"""Generate the tiny synthetic datasets in the real on-disk formats.

    python tools/make_tiny_datasets.py --root data/tiny \
        --which voc coco cityscapes --num-train 64 --num-val 16 \
        --size 128 128 --seed 0

Writes ``<root>/VOCdevkit`` (VOC2007 + VOC2012), ``<root>/coco`` (instances
and person_keypoints json, train2017/ val2017/), ``<root>/coco_keypoints``
(person-heavy COCO for keypoint models, only with ``--which coco-keypoints``)
and ``<root>/cityscapes`` (leftImg8bit/ gtFine/). The configs under
``configs/_base_/datasets/tiny_*.py`` point at these folders; the same configs
read the real datasets by changing ``data_root``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

from mmconvplug.datagen import (make_tiny_cityscapes, make_tiny_coco,
                                make_tiny_coco_keypoints, make_tiny_voc)

#: --which name -> (generator, sub-folder of --root, default (width, height)).
GENERATORS = {
    'voc': (make_tiny_voc, '', (128, 128)),
    'coco': (make_tiny_coco, 'coco', (128, 128)),
    'coco-keypoints': (make_tiny_coco_keypoints, 'coco_keypoints', (128, 128)),
    'cityscapes': (make_tiny_cityscapes, 'cityscapes', (128, 64)),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate tiny COCO / VOC / Cityscapes datasets '
        '(synthetic shapes, real formats).')
    parser.add_argument('--root', default='data/tiny',
                        help='output folder (default: data/tiny)')
    parser.add_argument('--which', nargs='+', default=['voc', 'coco',
                                                       'cityscapes'],
                        choices=sorted(GENERATORS),
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


def make_datasets(root: str, which: List[str], num_train: int, num_val: int,
                  size: Optional[List[int]], seed: int) -> Dict[str, dict]:
    """Write each dataset in ``which``; return the generators' path dicts."""
    written = {}
    for name in which:
        if name not in GENERATORS:
            raise ValueError(
                f'which={name!r} is not a tiny dataset; choose from '
                f'{sorted(GENERATORS)}.')
        make, sub, default_size = GENERATORS[name]
        written[name] = make(
            osp.join(root, sub) if sub else root, num_train=num_train,
            num_val=num_val, size=tuple(size) if size else default_size,
            seed=seed)
    return written


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for name in args.which:
        start = time.perf_counter()
        try:
            paths = make_datasets(args.root, [name], args.num_train,
                                  args.num_val, args.size, args.seed)[name]
        except ValueError as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        where = paths.get('devkit') or osp.commonpath(list(paths.values()))
        print(f'{name}: {args.num_train} train + {args.num_val} val images '
              f'in {time.perf_counter() - start:.1f}s -> {where}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
