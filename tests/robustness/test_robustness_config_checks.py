"""``check_config``: bad configs are refused before anything is built."""
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.config import Config

from mmconvplug.apis import (
    MissingCustomImportsWarning,
    check_config,
    registered_conv_types,
)
from mmconvplug.apis.config_checks import check_dist_backend


def _seg_config(data_root, conv_type='DOConv', imports=True, **extra):
    cfg = dict(
        default_scope='mmseg',
        model=dict(
            type='EncoderDecoder',
            backbone=dict(type='ResNetV1c', depth=18,
                          conv_cfg=dict(type=conv_type)),
            decode_head=dict(type='FCNHead', conv_cfg=None)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2,
                       val_interval=2),
        val_cfg=dict(type='ValLoop'),
        train_dataloader=dict(
            dataset=dict(
                type='CityscapesDataset',
                data_root=str(data_root),
                data_prefix=dict(img_path='leftImg8bit/train',
                                 seg_map_path='gtFine/train'))),
        val_dataloader=dict(
            dataset=dict(
                type='CityscapesDataset',
                data_root=str(data_root),
                data_prefix=dict(img_path='leftImg8bit/val',
                                 seg_map_path='gtFine/val'))),
        test_dataloader=dict(
            dataset=dict(
                type='CityscapesDataset',
                data_root=str(data_root),
                data_prefix=dict(img_path='leftImg8bit/test',
                                 seg_map_path='gtFine/test'))),
        **extra)
    if imports:
        cfg['custom_imports'] = dict(imports=['mmconvplug'],
                                     allow_failed_imports=False)
    return Config(cfg)


@pytest.fixture
def cityscapes_root(tmp_path):
    root = tmp_path / 'cityscapes'
    for split in ('train', 'val'):
        (root / 'leftImg8bit' / split).mkdir(parents=True)
        (root / 'gtFine' / split).mkdir(parents=True)
    return root


def test_a_good_config_passes(cityscapes_root):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        assert check_config(_seg_config(cityscapes_root)) == []
    assert not [w for w in record
                if issubclass(w.category, MissingCustomImportsWarning)]


def test_registered_conv_types_lists_ours_and_mmcvs():
    names = registered_conv_types()
    for name in ('Conv2d', 'Conv', 'DCNv2', 'DOConv', 'RefConv', 'CondConv',
                 'SCConv', 'DWSConv'):
        assert name in names, name
    assert 'ConvModule' not in names


def test_unknown_conv_type_lists_registered_ones(cityscapes_root):
    cfg = _seg_config(cityscapes_root, conv_type='DoConv')
    with pytest.raises(ValueError) as info:
        check_config(cfg)
    message = str(info.value)
    assert message.startswith('model.backbone.conv_cfg: conv type '
                              "'DoConv' is not registered")
    assert "'mmseg' scope" in message
    assert 'Registered conv types:' in message
    assert message.endswith("Did you mean 'DOConv'?")
    for name in ('DOConv', 'RefConv', 'CondConv', 'Conv2d'):
        assert name in message


def test_missing_data_root_names_each_key_and_the_fix(tmp_path):
    missing = tmp_path / 'no_such_dir'
    with pytest.raises(FileNotFoundError) as info:
        check_config(_seg_config(missing))
    message = str(info.value)
    assert f"train_dataloader.dataset.data_root: '{missing}' does not exist" \
        in message
    # paths under the missing data_root are not listed again
    assert 'data_prefix' not in message
    assert 'val_dataloader.dataset.data_root' in message
    assert 'test_dataloader' not in message  # training does not test
    assert 'tools/make_tiny_datasets.py' in message
    assert 'train_dataloader.dataset.data_root=' in message


def test_missing_annotation_file_names_key_and_path(tmp_path):
    root = tmp_path / 'coco'
    (root / 'train2017').mkdir(parents=True)
    cfg = Config(
        dict(
            default_scope='mmdet',
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1),
            train_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset', times=2,
                    dataset=dict(
                        type='CocoDataset',
                        data_root=str(root),
                        ann_file='annotations/instances_train2017.json',
                        data_prefix=dict(img='train2017/'))))))
    with pytest.raises(FileNotFoundError) as info:
        check_config(cfg)
    message = str(info.value)
    expected = root / 'annotations/instances_train2017.json'
    assert ("train_dataloader.dataset.dataset.ann_file: "
            f"'{expected}' does not exist (data_root='{root}')") in message
    assert 'data_prefix' not in message  # train2017/ exists


def test_missing_data_prefix_folder(cityscapes_root):
    cfg = _seg_config(cityscapes_root)
    (cityscapes_root / 'gtFine' / 'val').rmdir()
    with pytest.raises(FileNotFoundError) as info:
        check_config(cfg)
    message = str(info.value)
    assert ("val_dataloader.dataset.data_prefix.seg_map_path: "
            f"'{cityscapes_root / 'gtFine/val'}' does not exist") in message
    assert 'train_dataloader' not in message.split('To fix')[0]


def test_test_phase_checks_only_the_test_dataloader(cityscapes_root):
    cfg = _seg_config(cityscapes_root)
    with pytest.raises(FileNotFoundError,
                       match=r'test_dataloader\.dataset\.data_prefix'
                       r'\.img_path'):
        check_config(cfg, phase='test')
    with pytest.raises(ValueError, match="phase='deploy' is not one of"):
        check_config(cfg, phase='deploy')


def test_config_without_custom_imports_warns(cityscapes_root):
    cfg = _seg_config(cityscapes_root, imports=False)
    with pytest.warns(MissingCustomImportsWarning) as record:
        used = check_config(cfg)
    assert used == ['DOConv']
    message = str(record[0].message)
    assert 'DOConv' in message
    assert "custom_imports = dict(imports=['mmconvplug']" in message


@pytest.mark.slow
def test_stock_tools_fail_without_the_plugin_import():
    """Why the warning matters: in a process that never imports mmconvplug
    (the stock tools with a config lacking custom_imports) our types are
    unknown, and the errors do not say why."""
    code = (
        'from mmcv.cnn import build_conv_layer\n'
        'try:\n'
        "    build_conv_layer(dict(type='DOConv'), 3, 8, 3)\n"
        'except KeyError as error:\n'
        "    print('conv_cfg:', error)\n"
        'from mmseg.registry import MODELS\n'
        'from mmseg.utils import register_all_modules\n'
        'register_all_modules()\n'
        'try:\n'
        "    MODELS.build(dict(type='SCResNet', depth=50))\n"
        'except KeyError as error:\n'
        "    print('backbone:', error)\n")
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(': ', 1) for line in result.stdout.splitlines()
                 if line.startswith(('conv_cfg: ', 'backbone: ')))
    # mmcv's message does not even name the type ("Cannot find None ...").
    assert 'Cannot find' in lines['conv_cfg']
    assert 'SCResNet is not in the mmseg::model registry' in lines[
        'backbone']


@pytest.mark.skipif(torch.cuda.is_available(), reason='nccl works here')
def test_nccl_without_cuda_is_refused():
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    with pytest.raises(ValueError) as info:
        check_dist_backend(cfg)
    message = str(info.value)
    assert "env_cfg.dist_cfg.backend='nccl'" in message
    assert '--cfg-options env_cfg.dist_cfg.backend=gloo' in message
    check_dist_backend(Config(dict(launcher='none')))
    check_dist_backend(
        Config(dict(launcher='pytorch',
                    env_cfg=dict(dist_cfg=dict(backend='gloo')))))


@pytest.mark.parametrize('block, expected', [
    (dict(type='NoSuchConv'), 'NoSuchConv'),
    (dict(type='DOConv', min_kernel_size=0), 'min_kernel_size'),
    (dict(type='DOConv', not_an_argument=3), 'not_an_argument'),
])
def test_a_malformed_conv_swap_is_refused_before_building(
        cityscapes_root, block, expected):
    cfg = _seg_config(cityscapes_root)
    cfg.model.backbone.conv_cfg = None
    cfg.model.conv_swap = block
    with pytest.raises(ValueError, match=expected) as info:
        check_config(cfg)
    assert 'model.conv_swap' in str(info.value)


def test_a_good_conv_swap_passes(cityscapes_root):
    cfg = _seg_config(cityscapes_root)
    cfg.model.backbone.conv_cfg = None
    cfg.model.conv_swap = dict(type='DOConv', include=['backbone.layer4'],
                               min_kernel_size=2)
    check_config(cfg)
