"""set_data_root and the make_tiny_datasets CLI."""
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

from mmconvplug.datagen.config_paths import set_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_set_data_root_rewrites_nested_datasets_and_ann_files():
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/tiny_coco.py'))
    old = set_data_root(cfg, '/tmp/elsewhere')
    assert old == ['data/tiny/coco/']
    assert cfg.train_dataloader.dataset.data_root == '/tmp/elsewhere/'
    assert cfg.val_evaluator.ann_file == \
        '/tmp/elsewhere/annotations/instances_val2017.json'
    voc = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/tiny_voc.py'))
    set_data_root(voc, '/x/VOCdevkit')
    assert [d.data_root for d in voc.train_dataloader.dataset.datasets] == \
        ['/x/VOCdevkit/'] * 2
    assert voc.test_dataloader.dataset.data_root == '/x/VOCdevkit/'


def test_set_data_root_without_datasets_is_a_clear_error():
    with pytest.raises(ValueError, match='data_root'):
        set_data_root(Config(dict(model=dict())), '/x')


def _load_cli():
    path = osp.join(REPO, 'tools/make_tiny_datasets.py')
    spec = importlib.util.spec_from_file_location('make_tiny_datasets_cli',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_each_dataset_and_rejects_bad_sizes(tmp_path, capsys):
    cli = _load_cli()
    assert cli.main(['--root', str(tmp_path), '--which', 'voc', 'cityscapes',
                     '--num-train', '2', '--num-val', '1', '--size', '64',
                     '48', '--seed', '0']) == 0
    assert (tmp_path / 'VOCdevkit/VOC2007/ImageSets/Main/test.txt').is_file()
    assert list((tmp_path / 'cityscapes/gtFine/val').rglob('*labelIds.png'))
    assert cli.main(['--root', str(tmp_path), '--which', 'coco', '--size',
                     '8', '8']) == 2
    assert 'size' in capsys.readouterr().err
