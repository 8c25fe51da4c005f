"""Tiny datasets for the 2-process tests, generated once per session."""
import pytest

from mmconvplug.datagen import (
    make_tiny_cityscapes,
    make_tiny_coco,
    make_tiny_coco_keypoints,
    make_tiny_voc,
)

#: kind -> (generator, sub-folder generated into, data_root below it, size)
TINY_DATA = {
    'voc': (make_tiny_voc, 'voc', 'voc/VOCdevkit', (128, 128)),
    'coco': (make_tiny_coco, 'coco', 'coco', (128, 128)),
    'coco_keypoints': (make_tiny_coco_keypoints, 'coco_keypoints',
                       'coco_keypoints', (128, 128)),
    'cityscapes': (make_tiny_cityscapes, 'cityscapes', 'cityscapes',
                   (128, 64)),
}


@pytest.fixture(scope='session')
def tiny_data_root(tmp_path_factory):
    """``tiny_data_root(kind)``: the data_root of a tiny dataset with 4
    training and 2 validation images (one per rank), made on first use."""
    base = tmp_path_factory.mktemp('dist_tiny_data')
    made = {}

    def get(kind: str) -> str:
        if kind not in made:
            make, sub, root, size = TINY_DATA[kind]
            make(str(base / sub), num_train=4, num_val=2, size=size, seed=0)
            made[kind] = str(base / root)
        return made[kind]

    return get
