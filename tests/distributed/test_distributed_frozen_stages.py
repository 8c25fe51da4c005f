"""``frozen_stages`` under 2-process DDP (gloo, CPU) with default DDP flags.

One torchrun launch (:mod:`frozen_stages_ddp`) checks, for every registered
variant (through ``conv_cfg``, and through ``conv_swap`` where it has an
exact ``from_conv``), a ResNet-18 with ``frozen_stages=1`` wrapped in
``DistributedDataParallel`` right after the build, and then trains the
shipped ``configs/doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py``
(the DO-Conv paper's 8-GPU Mask R-CNN R50 config: ``frozen_stages=1``, a
``conv_swap`` over backbone, neck and heads) through ``tools/train.py
--launcher pytorch``, shrunk as the family tests shrink theirs: the tiny
COCO set at 128 px, no download (``init_cfg=None``), ``ITERS`` iterations,
no validation. Before the fix that run stopped at its second iteration
("Expected to have finished reduction in the prior iteration"): DDP had
registered 8 frozen-stage tensors the swap built trainable.

Budget: about a minute on 2 cores (ResNet-18 cases: a few seconds; the
R50 Mask R-CNN: build, 2 iterations).
"""
import glob
import json
import os.path as osp
import sys

import pytest
from frozen_stages_ddp import cases
from mmengine.config import Config
from test_distributed_families import GLOO, NPROC, REPO, _free_port, _run

from mmconvplug.datagen.config_paths import set_data_root

pytestmark = pytest.mark.slow

HERE = osp.dirname(osp.abspath(__file__))
DRIVER = osp.join(HERE, 'frozen_stages_ddp.py')
CONFIG = 'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py'
ITERS = 2


def _tiny_detstage_config(data_root: str, work_dir: str) -> str:
    """The shipped config, its data and schedule shrunk; model untouched
    but for the ImageNet init (no download here)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', CONFIG))
    assert cfg.model.backbone.frozen_stages == 1
    assert 'find_unused_parameters' not in cfg.get('model_wrapper_cfg', {})
    tiny = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'tiny_coco.py'))
    cfg.train_dataloader = tiny.train_dataloader
    cfg.train_dataloader.batch_size = 1
    set_data_root(cfg, data_root)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg',
                'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.model.backbone.init_cfg = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=10**6,
        save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(type='LogProcessor', window_size=1,
                             by_epoch=False)
    cfg.custom_hooks = [dict(type='FrozenStageProbeHook')]
    cfg.custom_imports = dict(imports=['mmconvplug', 'frozen_probe_hook'],
                              allow_failed_imports=False)
    cfg.randomness = dict(seed=0)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def frozen_run(tiny_data_root, tmp_path_factory):
    """The one 2-process launch: ``(variant results, detstage probes,
    output)``."""
    base = tmp_path_factory.mktemp('dist_frozen_stages')
    work_dir = str(base / 'detstage')
    (base / 'detstage').mkdir()
    result = str(base / 'variants.json')
    config = _tiny_detstage_config(tiny_data_root('coco'), work_dir)
    try:
        output = _run([
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={NPROC}', f'--master_port={_free_port()}',
            DRIVER, result, config, work_dir, '--cfg-options', GLOO
        ], timeout=600)
    except AssertionError as err:
        output = str(err)
    variants = json.load(open(result)) if osp.isfile(result) else {}
    probes = [json.load(open(path)) for path in sorted(
        glob.glob(osp.join(work_dir, 'frozen_probe_rank*.json')))]
    return variants, probes, output


@pytest.mark.parametrize('case', [f'{n}-{r}' for n, r in cases()])
def test_variant_in_frozen_stage_trains_under_default_ddp_flags(
        case, frozen_run):
    variants, _, output = frozen_run
    assert case in variants, output[-8000:]
    ranks = variants[case]
    assert len(ranks) == NPROC
    for record in ranks:
        assert record['error'] is None, record['error']
        assert record['trainable_frozen_at_wrap'] == []
        assert record['frozen_changed'] == []
        assert record['trained']
    assert len({record['checksum'] for record in ranks}) == 1


def test_detstage_config_trains_on_two_processes_with_frozen_stages(
        frozen_run):
    _, probes, output = frozen_run
    assert [p.get('rank') for p in probes] == [0, 1], output[-8000:]
    for probe in probes:
        assert probe['wrapper'] == 'MMDistributedDataParallel'
        assert probe['find_unused_parameters'] is False
        assert probe['iters'] == ITERS, output[-8000:]
        # stem + layer1 of ResNet-50: DO-Conv in the stem and the 3x3s
        assert probe['variants_frozen'] == 4
        assert probe['frozen_params'] > 0
        assert probe['trainable_frozen'] == []
        assert probe['frozen_unchanged'] is True
