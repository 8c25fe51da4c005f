"""End to end through the real mmengine Runner (tools/train.py): SSD on tiny
VOC, Mask R-CNN on tiny COCO and DeepLabv3+ on tiny Cityscapes, each with a
conv variant in the backbone and FoldHook evaluating the folded model with
the stock metric. A few iterations each: the loss must go down and the
stock evaluator must report its metric."""
import os.path as osp

import numpy as np
import pytest
from e2e_tiny_runs import (
    load_tool,
    read_log,
    read_scalars,
    tiny_config,
    train_losses,
)
from mmengine.config import Config
from mmengine.runner import Runner

from mmconvplug.datagen import (
    make_tiny_cityscapes,
    make_tiny_coco,
    make_tiny_voc,
)

pytestmark = pytest.mark.slow

CASES = {
    'ssd_voc': dict(
        config='demo/ssd_r18_tiny_voc.py', make=make_tiny_voc, sub='',
        root_sub='VOCdevkit', size=(128, 128), num_train=32, num_val=8,
        iters=30, batch_size=8, metric='pascal_voc/mAP'),
    'mask_rcnn_coco': dict(
        config='demo/mask_rcnn_r18_tiny_coco.py', make=make_tiny_coco,
        sub='coco', root_sub='coco', size=(128, 128), num_train=16,
        num_val=4, iters=30, batch_size=2, metric='coco/segm_mAP'),
    'deeplabv3plus_cityscapes': dict(
        config='demo/deeplabv3plus_r18_tiny_cityscapes.py',
        make=make_tiny_cityscapes, sub='cityscapes', root_sub='cityscapes',
        size=(128, 64), num_train=16, num_val=4, iters=20, batch_size=2,
        metric='mIoU'),
}


def _first_vs_last(losses, k=3):
    return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))


@pytest.mark.parametrize('case', sorted(CASES))
def test_train_variant_with_fold_hook_then_test(case, tmp_path):
    spec = CASES[case]
    data = tmp_path / 'data'
    spec['make'](str(data / spec['sub']) if spec['sub'] else str(data),
                 num_train=spec['num_train'], num_val=spec['num_val'],
                 size=spec['size'], seed=0)
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    config = tiny_config(spec['config'], str(data / spec['root_sub']),
                         str(work_dir), spec['iters'],
                         conv_cfg=dict(type='DOConv'), fold_hook=True,
                         batch_size=spec['batch_size'])

    train = load_tool('train')
    assert train.main([config, '--work-dir', str(work_dir)]) == 0

    records = read_scalars(str(work_dir))
    losses = train_losses(records)
    assert len(losses) >= 6 and all(np.isfinite(losses))
    first, last = _first_vs_last(losses)
    assert last < first, f'loss did not go down: {first:.3f} -> {last:.3f}'
    val = [r for r in records if spec['metric'] in r]
    assert val, f'the evaluator did not report {spec["metric"]}'
    assert 0.0 <= val[-1][spec['metric']] <= 100.0
    log = read_log(str(work_dir))
    assert 'DOConv' in log and 'FoldHook (val)' in log

    # The saved checkpoint tests through a fresh Runner (stock test loop,
    # folded by FoldHook again).
    ckpt = osp.join(str(work_dir), f'iter_{spec["iters"]}.pth')
    assert osp.isfile(ckpt)
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path / 'test')
    cfg.load_from = ckpt
    metrics = Runner.from_cfg(cfg).test()
    assert spec['metric'] in metrics
    assert metrics[spec['metric']] == pytest.approx(val[-1][spec['metric']],
                                                    abs=1e-3)
