"""tools/train.py's command line (fast: config handling only, no training)."""
import os.path as osp

import pytest
from e2e_tiny_runs import load_tool

#: A stand-alone config (no mmdet::/mmseg:: bases: parses in milliseconds)
#: with the keys tools/train.py touches.
TINY_CONFIG = """
default_scope = 'mmseg'
model = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c'))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
auto_scale_lr = dict(enable=False, base_batch_size=8)
"""


@pytest.fixture(scope='module')
def train():
    return load_tool('train')


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'tiny_seg_cfg.py'
    path.write_text(TINY_CONFIG)
    return str(path)


def test_overrides_work_dir_resume_and_cfg_options(train, config, tmp_path):
    ckpt = tmp_path / 'iter_5.pth'
    ckpt.write_bytes(b'')
    args = train.parse_args([
        config, '--work-dir', str(tmp_path / 'w'), '--resume', str(ckpt),
        '--cfg-options', 'model.backbone.conv_cfg.type=DOConv',
        'train_cfg.max_iters=7', '--auto-scale-lr'
    ])
    cfg = train.build_config(args)
    assert cfg.work_dir == str(tmp_path / 'w')
    assert cfg.resume is True and cfg.load_from == str(ckpt)
    assert cfg.model.backbone.conv_cfg.type == 'DOConv'
    assert cfg.train_cfg.max_iters == 7
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.launcher == 'none'


def test_resume_auto_and_default_work_dir(train, config):
    cfg = train.build_config(train.parse_args([config, '--resume']))
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny_seg_cfg')


@pytest.mark.parametrize('extra,setting', [
    (['--resume', '/nonexistent/ckpt.pth'], '--resume'),
    (['--cfg-options', 'optim_wrapper.type=OptimWrapperDict', '--amp'],
     '--amp'),
])
def test_bad_arguments_are_clear_errors(train, config, extra, setting):
    with pytest.raises(ValueError, match=setting):
        train.build_config(train.parse_args([config] + extra))


def test_missing_config_is_a_clear_error(train):
    with pytest.raises(ValueError, match='config'):
        train.build_config(train.parse_args(['missing_config.py']))


def test_amp_on_cpu_is_refused_with_the_reason(train, config, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: --amp is allowed')
    assert train.main([config, '--amp']) == 2
    err = capsys.readouterr().err
    assert '--amp' in err and 'AmpOptimWrapper' in err
