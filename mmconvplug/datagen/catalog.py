"""The tiny datasets: one table, used by ``tools/make_tiny_datasets.py``
and the demo.

Each entry names the generator, the folder it writes under the root, the
folder the configs use as ``data_root`` and the default image size.
:func:`ensure_tiny_dataset` generates a dataset unless the same one (same
generator, counts, size, seed and mmconvplug version) is already on disk.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..version import __version__
from .tiny_cityscapes import make_tiny_cityscapes
from .tiny_coco import make_tiny_coco, make_tiny_coco_keypoints
from .tiny_crowdpose import make_tiny_crowdpose
from .tiny_voc import make_tiny_voc

#: Written next to a generated dataset; what :func:`ensure_tiny_dataset`
#: compares.
STAMP_FILE = '.mmconvplug-tiny.json'


@dataclass(frozen=True)
class TinyDataset:
    """One tiny dataset.

    Args:
        make (Callable): The generator, ``make(root, num_train, num_val,
            size, seed) -> dict of written paths``.
        subdir (str): Folder under the root the generator writes into
            (``''``: the root itself).
        data_root (str): Folder under the root the configs read.
        size (tuple[int, int]): Default image ``(width, height)``.
    """

    make: Callable[..., Dict[str, str]]
    subdir: str
    data_root: str
    size: Tuple[int, int]


#: ``--which`` name -> dataset. The configs under
#: ``configs/_base_/datasets/tiny_*.py`` read ``data/tiny/<data_root>``.
TINY_DATASETS: Dict[str, TinyDataset] = {
    'voc': TinyDataset(make_tiny_voc, '', 'VOCdevkit', (128, 128)),
    'coco': TinyDataset(make_tiny_coco, 'coco', 'coco', (128, 128)),
    'coco-keypoints': TinyDataset(make_tiny_coco_keypoints, 'coco_keypoints',
                                  'coco_keypoints', (128, 128)),
    'cityscapes': TinyDataset(make_tiny_cityscapes, 'cityscapes',
                              'cityscapes', (128, 64)),
    'crowdpose': TinyDataset(make_tiny_crowdpose, 'crowdpose', 'crowdpose',
                             (128, 128)),
}


def tiny_dataset(name: str) -> TinyDataset:
    """The table entry of ``name``; a ValueError listing the names if
    unknown."""
    if name not in TINY_DATASETS:
        raise ValueError(f'{name!r} is not a tiny dataset; choose from '
                         f'{sorted(TINY_DATASETS)}.')
    return TINY_DATASETS[name]


def make_tiny_dataset(name: str, root: str, num_train: int, num_val: int,
                      size: Optional[Sequence[int]] = None,
                      seed: int = 0) -> Dict[str, str]:
    """Write dataset ``name`` under ``root``; return the written paths.

    Args:
        name (str): A key of :data:`TINY_DATASETS`.
        root (str): Root folder (``data/tiny`` for the configs).
        num_train (int): Training images.
        num_val (int): Validation images.
        size (Sequence[int], optional): Image ``(width, height)``.
            Defaults to the dataset's size.
        seed (int): Same seed, same files. Defaults to 0.

    Raises:
        ValueError: unknown name or unusable counts / size / seed.
    """
    dataset = tiny_dataset(name)
    out = osp.join(root, dataset.subdir) if dataset.subdir else root
    return dataset.make(out, num_train=num_train, num_val=num_val,
                        size=tuple(size) if size else dataset.size,
                        seed=seed)


def ensure_tiny_dataset(name: str, root: str, num_train: int, num_val: int,
                        size: Optional[Sequence[int]] = None,
                        seed: int = 0) -> Tuple[str, bool]:
    """Generate dataset ``name`` unless the same one is already on disk.

    Args: as :func:`make_tiny_dataset`.

    Returns:
        tuple[str, bool]: The ``data_root`` for a config and whether the
        dataset was generated now.
    """
    dataset = tiny_dataset(name)
    want = dict(generator=dataset.make.__name__, num_train=num_train,
                num_val=num_val, size=list(size or dataset.size), seed=seed,
                version=__version__)
    data_root = osp.join(root, dataset.data_root)
    stamp = osp.join(data_root, STAMP_FILE)
    if osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == want:
                return data_root, False
    make_tiny_dataset(name, root, num_train, num_val, size, seed)
    with open(stamp, 'w') as f:
        json.dump(want, f)
    return data_root, True
