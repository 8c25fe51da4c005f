"""A conv_swap trains through the real Runner and folds into the stock model.

Each new config's swap block is put on the tiny demo config of its
architecture (same heads, ResNet-18, tiny datasets): ``tools/train.py``
trains a few iterations (``FoldHook`` validating the folded copy), then
``tools/fold.py`` writes a checkpoint that loads ``strict=True`` into the
model of the config *without* the block and reproduces the trained outputs;
the deploy config it writes is that stock config. The log carries the swap
report (once) naming the swapped head convs.
"""
import glob
import os.path as osp

import pytest
import torch
from e2e_tiny_runs import load_tool, read_log, tiny_config  # noqa: I100
from mmengine.config import Config
from swap_test_utils import build, load, model_dict  # noqa: I100

from mmconvplug.analysis import output_difference
from mmconvplug.datagen import (
    make_tiny_cityscapes,
    make_tiny_coco,
    make_tiny_voc,
)
from mmconvplug.utils import load_checkpoint_file

pytestmark = pytest.mark.slow

ITERS = 4

#: new config -> (tiny demo config, data maker, data sub-dir, image size,
#: head convs the report must name)
CASES = {
    'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py':
    ('demo/mask_rcnn_r18_tiny_coco.py', make_tiny_coco, 'coco', (128, 128),
     ['rpn_head.rpn_conv', 'roi_head.mask_head.convs.0.conv',
      'neck.fpn_convs.0.conv']),
    'refconv/ssd300_vgg16-refconv-all_8xb8-24e_voc0712.py':
    ('demo/ssd_r18_tiny_voc.py', make_tiny_voc, 'VOCdevkit', (128, 128),
     ['bbox_head.cls_convs.0.0', 'bbox_head.reg_convs.4.0',
      'neck.extra_layers.0.1.conv']),
    'refconv/deeplabv3plus_r50-d8-refconv-aspp_4xb2-80k_cityscapes-512x1024.py':  # noqa: E501
    ('demo/deeplabv3plus_r18_tiny_cityscapes.py', make_tiny_cityscapes,
     'cityscapes', (128, 64),
     ['decode_head.aspp_modules.1.depthwise_conv.conv',
      'decode_head.sep_bottleneck.0.depthwise_conv.conv',
      'auxiliary_head.convs.0.conv']),
    'doconv/deeplabv3plus_r50-d8-doconv-aspp_4xb2-80k_cityscapes-512x1024.py':  # noqa: E501
    ('demo/deeplabv3plus_r18_tiny_cityscapes.py', make_tiny_cityscapes,
     'cityscapes', (128, 64),
     ['decode_head.aspp_modules.3.depthwise_conv.conv',
      'decode_head.bottleneck.conv']),
}


def zero_map_block(config: str) -> dict:
    """The config's swap block, a RefConv map starting at zero: training
    must move it (the paper configs' official random map would be nonzero
    untrained), and a plain checkpoint then starts the swapped model exactly
    at the plain network."""
    block = load(config).model.conv_swap.to_dict()
    if block['type'] == 'RefConv':
        block['zero_init_refocus'] = True
    return block


def swap_run_config(config: str, tmp_path, conv_swap,
                    iters: int = ITERS) -> str:
    """The tiny demo config of ``config``'s architecture on fresh tiny data,
    ``iters`` iterations, FoldHook, with ``conv_swap`` (None: plain)."""
    demo, make, sub, size, _ = CASES[config]
    data = tmp_path / 'data'
    root = data / sub if sub != 'VOCdevkit' else data
    make(str(root), num_train=4, num_val=2, size=size, seed=0)
    work_dir = tmp_path / 'work'
    work_dir.mkdir(exist_ok=True)
    path = tiny_config(demo, str(data / sub), str(work_dir), iters,
                       conv_cfg=None, fold_hook=True, batch_size=2)
    cfg = Config.fromfile(path)
    cfg.param_scheduler = []  # constant lr: nothing to schedule in 4 steps
    cfg.custom_hooks = [dict(type='FoldHook', log_complexity=False)]
    if conv_swap is not None:
        cfg.model.conv_swap = conv_swap
    cfg.dump(path)
    return path


@pytest.mark.parametrize('config', sorted(CASES))
def test_trained_swap_folds_into_the_stock_model(config, tmp_path):
    block = zero_map_block(config)
    path = swap_run_config(config, tmp_path, block)
    work_dir = str(tmp_path / 'work')
    assert load_tool('train').main([path, '--work-dir', work_dir]) == 0

    log = read_log(work_dir)
    assert log.count('conv_swap on ') == 1  # the report, logged once
    for name in CASES[config][4]:
        assert name in log
    assert 'FoldHook (val)' in log

    ckpt = osp.join(work_dir, f'iter_{ITERS}.pth')
    trained_state = load_checkpoint_file(ckpt)['state_dict']
    own = ('D_delta', 'refocus')
    moved = [k for k, v in trained_state.items()
             if any(o in k for o in own) and v.abs().max() > 0]
    assert moved, 'the variants did not train'

    out = str(tmp_path / 'deploy' / 'folded.pth')
    assert load_tool('fold').main([path, ckpt, out]) == 0
    deploy = Config.fromfile(out[:-4] + '.py')
    stock_cfg = Config.fromfile(path)
    del stock_cfg.model['conv_swap']
    assert model_dict(deploy) == model_dict(stock_cfg)
    assert 'custom_imports' not in deploy  # stock mmdet / mmseg only

    stock = build(deploy)
    stock.load_state_dict(load_checkpoint_file(out)['state_dict'],
                          strict=True)
    trained = build(Config.fromfile(path))
    trained.load_state_dict(trained_state, strict=True)
    x = torch.randn(1, 3, *CASES[config][3][::-1],
                    generator=torch.Generator().manual_seed(0))
    difference = output_difference(trained, stock, x)
    assert difference.max_rel_error <= 1e-4, difference


def test_resume_and_load_from_of_a_swapped_run(tmp_path):
    """Resume continues the swapped model; load_from a plain-trained
    checkpoint starts the swapped model exactly at that plain network."""
    config = ('refconv/deeplabv3plus_r50-d8-refconv-aspp_4xb2-80k_'
              'cityscapes-512x1024.py')
    block = zero_map_block(config)
    train = load_tool('train')

    plain_path = swap_run_config(config, tmp_path, None, iters=1)
    plain_dir = str(tmp_path / 'plain')
    assert train.main([plain_path, '--work-dir', plain_dir]) == 0
    plain_ckpt = osp.join(plain_dir, 'iter_1.pth')

    # load_from: a plain checkpoint into the swapped model (CheckpointFitHook
    # is on, as tools/train.py adds it for load_from); zero-lr 1 iteration
    cfg = Config.fromfile(plain_path)
    cfg.model.conv_swap = block
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = 1
    cfg.optim_wrapper.optimizer.lr = 0.0
    cfg.optim_wrapper.optimizer.weight_decay = 0.0
    cfg.load_from = plain_ckpt
    swap_path = str(tmp_path / 'swap_from_plain.py')
    cfg.dump(swap_path)
    swap_dir = str(tmp_path / 'from_plain')
    assert train.main([swap_path, '--work-dir', swap_dir]) == 0
    assert 'CheckpointFitHook' in read_log(swap_dir)
    state = load_checkpoint_file(osp.join(swap_dir, 'iter_1.pth'))
    plain_state = load_checkpoint_file(plain_ckpt)['state_dict']
    swapped = build(cfg)
    swapped.load_state_dict(state['state_dict'], strict=True)
    # lr 0 left the weights; the BN statistics moved in the iteration
    swapped.load_state_dict({k: v for k, v in plain_state.items()
                             if 'running_' in k}, strict=False)
    plain = build(Config.fromfile(plain_path))
    plain.load_state_dict(plain_state, strict=True)
    x = torch.randn(1, 3, 64, 128)
    assert output_difference(plain, swapped, x).max_rel_error <= 1e-6

    # resume: 1 more iteration from the swapped checkpoint
    cfg.train_cfg.max_iters = 2
    cfg.load_from = None
    resume_path = str(tmp_path / 'swap_resume.py')
    cfg.dump(resume_path)
    assert train.main([resume_path, '--work-dir', swap_dir, '--resume']) == 0
    log = read_log_latest(swap_dir)
    assert 'Resumed checkpoint' in log or 'resumed' in log.lower()
    resumed = load_checkpoint_file(osp.join(swap_dir, 'iter_2.pth'))
    assert resumed['meta']['iter'] == 2
    assert set(resumed['state_dict']) == set(state['state_dict'])


def read_log_latest(work_dir: str) -> str:
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    return open(paths[-1]).read()

