"""Tiny VOC: read by mmdet's real VOCDataset through a real pipeline."""
import filecmp
import os.path as osp
import xml.etree.ElementTree as ET

import pytest
from mmengine.registry import init_default_scope

from mmconvplug.datagen import VOC_CLASSES, VOC_SHAPE_CLASSES, make_tiny_voc

SIZE = (96, 80)


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_voc'))
    make_tiny_voc(root, num_train=6, num_val=3, size=SIZE, seed=1)
    return root


def _build(voc_root, year, split, test_mode):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    return DATASETS.build(
        dict(type='VOCDataset',
             data_root=osp.join(voc_root, 'VOCdevkit'),
             ann_file=f'VOC{year}/ImageSets/Main/{split}.txt',
             data_prefix=dict(sub_data_root=f'VOC{year}/'),
             test_mode=test_mode,
             pipeline=[
                 dict(type='LoadImageFromFile'),
                 dict(type='LoadAnnotations', with_bbox=True),
                 dict(type='Resize', scale=(64, 64), keep_ratio=False),
                 dict(type='PackDetInputs')
             ]))


def test_layout_matches_voc(voc_root):
    for year, sets in (('2007', ('trainval', 'test')), ('2012', ('trainval',
                                                                 ))):
        base = osp.join(voc_root, 'VOCdevkit', f'VOC{year}')
        for name in sets:
            ids = open(osp.join(base, 'ImageSets/Main', f'{name}.txt')).read(
            ).split()
            assert ids
            for i in ids:
                assert osp.isfile(osp.join(base, 'JPEGImages', f'{i}.jpg'))
                assert osp.isfile(osp.join(base, 'Annotations', f'{i}.xml'))


@pytest.mark.parametrize('year,split,test_mode', [('2007', 'trainval', False),
                                                  ('2012', 'trainval', False),
                                                  ('2007', 'test', True)])
def test_voc_dataset_reads_every_image(voc_root, year, split, test_mode):
    ds = _build(voc_root, year, split, test_mode)
    assert ds.metainfo['classes'] == VOC_CLASSES
    assert len(ds) > 0
    used = {VOC_CLASSES.index(c) for c in VOC_SHAPE_CLASSES.values()}
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        for inst in info['instances']:
            x0, y0, x1, y1 = inst['bbox']
            assert 0 <= x0 <= x1 < SIZE[0] and 0 <= y0 <= y1 < SIZE[1]
            assert inst['bbox_label'] in used
        sample = ds[idx]
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
        boxes = sample['data_samples'].gt_instances.bboxes.tensor
        assert (boxes[:, 2:] <= 64).all() and (boxes[:, :2] >= 0).all()


def test_difficult_and_truncated_flags_are_written(tmp_path):
    make_tiny_voc(str(tmp_path), num_train=16, num_val=2, size=SIZE, seed=3)
    flags = {'difficult': set(), 'truncated': set()}
    for xml in (tmp_path / 'VOCdevkit/VOC2007/Annotations').glob('*.xml'):
        for obj in ET.parse(xml).getroot().findall('object'):
            for key in flags:
                flags[key].add(obj.find(key).text)
    assert flags['difficult'] <= {'0', '1'} and '0' in flags['difficult']
    assert flags['truncated'] == {'0', '1'}


def test_same_seed_same_files_other_seed_differs(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    make_tiny_voc(a, num_train=2, num_val=1, size=(64, 64), seed=5)
    make_tiny_voc(b, num_train=2, num_val=1, size=(64, 64), seed=5)
    make_tiny_voc(c, num_train=2, num_val=1, size=(64, 64), seed=6)
    rel = 'VOCdevkit/VOC2007/Annotations/000001.xml'
    img = 'VOCdevkit/VOC2007/JPEGImages/000001.jpg'
    assert filecmp.cmp(osp.join(a, rel), osp.join(b, rel), shallow=False)
    assert filecmp.cmp(osp.join(a, img), osp.join(b, img), shallow=False)
    assert not filecmp.cmp(osp.join(a, img), osp.join(c, img), shallow=False)


@pytest.mark.parametrize('kwargs,setting', [
    (dict(num_train=0), 'num_train'),
    (dict(num_train=1), 'num_train'),
    (dict(num_val=-1), 'num_val'),
    (dict(size=(16, 128)), 'size'),
    (dict(size=(128, )), 'size'),
    (dict(seed=-3), 'seed'),
])
def test_bad_arguments_name_the_setting(tmp_path, kwargs, setting):
    with pytest.raises(ValueError, match=setting):
        make_tiny_voc(str(tmp_path), **kwargs)
