"""Tiny Cityscapes: read by mmseg's real CityscapesDataset; train ids and
label ids agree."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmconvplug.datagen import CITYSCAPES_CLASSES, make_tiny_cityscapes
from mmconvplug.datagen.tiny_cityscapes import TRAIN_ID_TO_LABEL_ID


@pytest.fixture(scope='module')
def cs_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_cityscapes'))
    make_tiny_cityscapes(root, num_train=4, num_val=2, size=(96, 48), seed=0)
    return root


@pytest.mark.parametrize('split', ['train', 'val'])
def test_cityscapes_dataset_reads_pairs(cs_root, split):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ds = DATASETS.build(
        dict(type='CityscapesDataset',
             data_root=cs_root,
             data_prefix=dict(img_path=f'leftImg8bit/{split}',
                              seg_map_path=f'gtFine/{split}'),
             pipeline=[
                 dict(type='LoadImageFromFile'),
                 dict(type='LoadAnnotations'),
                 dict(type='PackSegInputs')
             ]))
    assert ds.metainfo['classes'] == CITYSCAPES_CLASSES
    assert len(ds) == (4 if split == 'train' else 2)
    seen = set()
    for idx in range(len(ds)):
        sample = ds[idx]
        seg = sample['data_samples'].gt_sem_seg.data.numpy()
        assert seg.shape == (1, 48, 96)
        assert tuple(sample['inputs'].shape) == (3, 48, 96)
        values = set(np.unique(seg).tolist())
        assert values <= set(range(19)) | {255}
        seen |= values
    assert {0, 2, 10, 13} <= seen  # road, building, sky, car


def test_label_ids_match_train_ids(cs_root):
    for path in glob.glob(osp.join(cs_root, 'gtFine/*/*/*_labelTrainIds.png')):
        train_ids = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        label_ids = cv2.imread(path.replace('labelTrainIds', 'labelIds'),
                               cv2.IMREAD_UNCHANGED)
        for t in np.unique(train_ids):
            ids = np.unique(label_ids[train_ids == t])
            expected = 1 if t == 255 else TRAIN_ID_TO_LABEL_ID[t]
            assert ids.tolist() == [expected]
        img = path.replace('_gtFine_labelTrainIds', '_leftImg8bit').replace(
            f'{osp.sep}gtFine{osp.sep}', f'{osp.sep}leftImg8bit{osp.sep}')
        assert osp.isfile(img)
