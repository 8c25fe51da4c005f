"""``mmconvplug datasets`` (and ``tools/make_tiny_datasets.py``).

Writes the tiny synthetic datasets in the real on-disk formats
(:func:`mmconvplug.datagen.make_tiny_dataset`).
"""
import argparse
import os.path as osp
import sys
import time

from mmconvplug.datagen import TINY_DATASETS, make_tiny_dataset

DESCRIPTION = """generate tiny COCO / VOC / Cityscapes datasets (synthetic
shapes, real formats)

The configs' _base_/datasets/tiny_*.py read them from data/tiny; the same
configs read the real datasets by changing data_root."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``datasets``' options."""
    parser.add_argument('--root', default='data/tiny',
                        help='output folder (default: data/tiny)')
    parser.add_argument('--which', nargs='+', default=['voc', 'coco',
                                                       'cityscapes'],
                        choices=sorted(TINY_DATASETS),
                        help='datasets to write (default: voc coco '
                        'cityscapes)')
    parser.add_argument('--num-train', type=int, default=64,
                        help='training images per dataset (default: 64)')
    parser.add_argument('--num-val', type=int, default=16,
                        help='validation images per dataset (default: 16)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('W', 'H'),
                        help='image width and height (default: 128 128, '
                        'Cityscapes 128 64)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed: same seed, same files (default: 0)')


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Write the datasets; the exit status (2: a bad option)."""
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
