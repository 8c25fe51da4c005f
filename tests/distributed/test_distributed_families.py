"""Every config family trains, validates and resumes under 2-process DDP on
CPU (gloo), through ``tools/train.py --launcher pytorch`` as
``tools/dist_train.sh CONFIG 2`` runs it.

One family each: SSD (tiny VOC), Mask R-CNN (tiny COCO), DeepLabv3+ (tiny
Cityscapes, with the SyncBN of the shipped DeepLabv3+ configs: the issue's
``--cfg-options ... norm_cfg.type=SyncBN``), Keypoint R-CNN (tiny COCO
keypoints) and the multi-domain FCN (the shipped ``fcn_mdresnet26-dws-2dom``
config on tiny Cityscapes: DWSConv + DomainBN backbone, SyncBN heads, DDP's
default flags). Each uses a foldable variant (DOConv / RefConv through
``conv_cfg``; DWSConv for the multi-domain model) and ``FoldHook``.

One torchrun launch (:mod:`train_and_resume`, to pay the start-up once) runs,
per family, ``tools/train.py`` for ``FIRST`` iterations and then
``tools/train.py --resume`` to ``TOTAL``; both validate. ``RankProbeHook``
records what each rank did, since mmengine logs rank 0 only. Checked per
family:

* the second run resumes where the first stopped (start iteration,
  checkpoints ``iter_FIRST`` and ``iter_TOTAL`` only);
* rank 0 writes each checkpoint once, rank 1 none;
* both ranks validate their half of the validation set with the folded
  model (no variant conv left, not the DDP wrapper) and get the same
  metrics;
* both ranks hold bit-identical parameters after each run.

Budget: 2 + 2 iterations at 128 px, 2 validation images per family; the
launch takes about 2 minutes on 2 cores.
"""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from collections import defaultdict

import pytest
import torch
from mmengine.config import Config

from mmconvplug.datagen.config_paths import set_data_root
from mmconvplug.utils import load_checkpoint_file

pytestmark = pytest.mark.slow

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
DRIVER = osp.join(HERE, 'train_and_resume.py')
NPROC = 2
FIRST, TOTAL = 2, 4
GLOO = 'env_cfg.dist_cfg.backend=gloo'

CASES = {
    'ssd_voc': dict(
        config='demo/ssd_r18_tiny_voc.py', data='voc', conv='DOConv',
        batch_size=2, metric='pascal_voc/mAP'),
    'mask_rcnn_coco': dict(
        config='demo/mask_rcnn_r18_tiny_coco.py', data='coco',
        conv='RefConv', batch_size=1, metric='coco/segm_mAP'),
    'keypoint_rcnn_coco': dict(
        config='keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_coco.py',
        data='coco_keypoints', conv='DOConv', batch_size=1,
        metric='coco/keypoints_mAP'),
    'deeplabv3plus_cityscapes_syncbn': dict(
        config='demo/deeplabv3plus_r18_tiny_cityscapes.py',
        data='cityscapes', conv='DOConv', batch_size=2, metric='mIoU',
        norm='SyncBN'),
    'multi_domain_cityscapes': dict(
        config='dwsconv/fcn_mdresnet26-dws-2dom_4xb2-40k_cityscapes-'
        '512x1024.py', data='cityscapes', conv=None, batch_size=2,
        metric='mIoU'),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHON=sys.executable, PORT=str(_free_port()),
               PYTHONPATH=os.pathsep.join(
                   [REPO, HERE, env.get('PYTHONPATH', '')]))
    return env


def _run(command, timeout=300) -> str:
    result = subprocess.run(command, cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f'{" ".join(command)} exited '
                             f'{result.returncode}\n{output[-8000:]}')
    return output


def _multi_domain_at_tiny_scale(cfg: Config) -> None:
    """The shipped 512x1024 Cityscapes pipelines -> the tiny ones."""
    tiny = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets',
                 'tiny_cityscapes.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.pipeline = tiny[key].dataset.pipeline
    cfg.model.data_preprocessor.size = tiny.crop_size


def _write_config(spec: dict, data_root: str, work_dir: str) -> str:
    cfg = Config.fromfile(osp.join(REPO, 'configs', spec['config']))
    if spec['config'].startswith('dwsconv/'):
        _multi_domain_at_tiny_scale(cfg)
    set_data_root(cfg, data_root)
    if spec['conv']:
        cfg.model.backbone.conv_cfg = dict(type=spec['conv'])
    if 'rcnn' in cfg.model.get('test_cfg', {}):
        # After 2 iterations from scratch no score passes 0.05: keep every
        # detection, so the COCO evaluation has results to score.
        cfg.model.test_cfg.rcnn.score_thr = 0.0
    if spec.get('norm'):
        for part in ('backbone', 'decode_head', 'auxiliary_head'):
            cfg.model[part].norm_cfg.type = spec['norm']
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=TOTAL,
                         val_interval=FIRST)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0,
             end=TOTAL)
    ]
    cfg.train_dataloader.batch_size = spec['batch_size']
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.val_dataloader.batch_size = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=FIRST,
        save_last=True)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(type='LogProcessor', window_size=1,
                             by_epoch=False)
    cfg.custom_hooks = [
        dict(type='FoldHook', log_complexity=False),
        dict(type='RankProbeHook')
    ]
    cfg.custom_imports = dict(imports=['mmconvplug', 'rank_probe_hook'],
                              allow_failed_imports=False)
    cfg.randomness = dict(seed=0)
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path


def _probes(work_dir: str):
    """``[(run 1 rank records), (run 2 rank records)]`` in run order."""
    by_run = defaultdict(dict)
    for path in glob.glob(osp.join(work_dir, 'probe_rank*_*.json')):
        with open(path) as file:
            record = json.load(file)
        stamp = osp.basename(path).split('_', 2)[2]
        by_run[stamp][record['rank']] = record
    runs = [by_run[stamp] for stamp in sorted(by_run)]
    assert [sorted(run) for run in runs] == [[0, 1], [0, 1]], runs
    return runs


def _check_runs(work_dir: str, metric: str):
    runs = _probes(work_dir)
    for index, run in enumerate(runs):
        start, end = (0, FIRST) if index == 0 else (FIRST, TOTAL)
        for rank, record in run.items():
            assert record['wrapper'] == 'MMDistributedDataParallel'
            assert (record['start_iter'], record['end_iter']) == (start, end)
            # Written once: Runner.save_checkpoint is master-only.
            assert record['saved'] == (1 if rank == 0 else 0), record
            # Each rank validated one of the 2 images, with the folded copy.
            assert record['val_samples'] == [1], record
            assert all(model != 'MMDistributedDataParallel' and variants == 0
                       for model, variants in record['val_model']), record
            assert metric in record['metrics'][-1], record['metrics']
        assert run[0]['metrics'] == run[1]['metrics']
        assert run[0]['checksum'] == run[1]['checksum']
    checkpoints = sorted(osp.basename(p)
                         for p in glob.glob(osp.join(work_dir, '*.pth')))
    assert checkpoints == [f'iter_{FIRST}.pth', f'iter_{TOTAL}.pth']
    last = load_checkpoint_file(osp.join(work_dir, f'iter_{TOTAL}.pth'))
    assert last['meta']['iter'] == TOTAL
    return runs


def _logs(work_dir: str) -> str:
    return '\n'.join(
        open(path).read()
        for path in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))


def _selected_cases(request) -> list:
    """The families whose tests this session runs (all, unless ``-k``)."""
    cases = {
        item.callspec.params['case']
        for item in request.session.items
        if getattr(item, 'module', None) is request.module
        and hasattr(item, 'callspec')
    }
    return sorted(cases or CASES)


@pytest.fixture(scope='module')
def family_runs(request, tiny_data_root, tmp_path_factory):
    """Train + resume the selected families in one 2-process launch;
    returns ``{case: work_dir}`` and the launch's output."""
    base = tmp_path_factory.mktemp('dist_families')
    work_dirs, pairs = {}, []
    for case in _selected_cases(request):
        spec = CASES[case]
        work_dirs[case] = str(base / case)
        pairs += [_write_config(spec, tiny_data_root(spec['data']),
                                work_dirs[case]), work_dirs[case]]
    try:
        output = _run([
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={NPROC}', f'--master_port={_free_port()}',
            DRIVER, str(FIRST), str(TOTAL), *pairs, '--cfg-options', GLOO
        ], timeout=900)
    except AssertionError as err:
        output = str(err)
    return work_dirs, output


@pytest.mark.parametrize('case', sorted(CASES))
def test_family_trains_validates_and_resumes_on_two_processes(
        case, family_runs):
    work_dirs, output = family_runs
    work_dir = work_dirs[case]
    assert osp.isfile(osp.join(work_dir, 'done')), output[-8000:]
    runs = _check_runs(work_dir, CASES[case]['metric'])
    log = _logs(work_dir)
    assert 'FoldHook (val)' in log and 'Distributed training: True' in log
    if CASES[case].get('norm') == 'SyncBN':
        # torch has no CPU SyncBatchNorm: reverted to BN, with a warning.
        assert log.count('SyncBN layers reverted to BatchNorm') == 2
        for run in runs:
            for record in run.values():
                assert record['sync_bn'] == 0 and record['batch_norm'] > 0
    if case == 'multi_domain_cityscapes':
        # Domain 1 took no part: its kernels are as built; domain 0 trained.
        first = load_checkpoint_file(osp.join(work_dir, f'iter_{FIRST}.pth'))
        last = load_checkpoint_file(osp.join(work_dir, f'iter_{TOTAL}.pth'))
        first, last = first['state_dict'], last['state_dict']
        for domain, trained in (('.depthwise.0.', True),
                                ('.depthwise.1.', False)):
            keys = [k for k in last if domain in k]
            assert keys
            assert any(not torch.equal(first[k], last[k])
                       for k in keys) is trained
