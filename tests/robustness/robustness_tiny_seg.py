"""A tiny mmseg segmenter on tiny Cityscapes, run through our real tools.

Shared by the distributed, crash-resume and malicious-checkpoint tests. The
config is written for *exact* reproducibility, which the tests rely on:

* GroupNorm instead of BatchNorm: its statistics are per sample, so a batch
  of B on one process and two batches of B/2 on two DDP processes compute
  the same outputs (BatchNorm's would differ; SyncBN would fix that on GPUs,
  but torch's SyncBatchNorm has no CPU kernel);
* no random augmentation and no dropout: the only randomness is the weight
  init and the sampler, both seeded (``randomness.seed``);
* ``InfiniteSampler``: rank ``r`` of ``w`` takes samples ``r, r+w, ...`` of
  the same seeded order, so DDP's two half-batches together are exactly the
  one-process batch; after ``--resume`` the iteration-based loop advances the
  sampler by the iterations already done, so the data position is restored;
* the loss is the mean over all pixels of same-sized images, so DDP's
  average of the per-rank gradients is the gradient of the global batch.
"""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
from typing import Dict, List, Optional

import torch

from mmconvplug.datagen import make_tiny_cityscapes
from mmconvplug.utils import load_checkpoint_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')

GROUP_NORM = "dict(type='GN', num_groups=4, requires_grad=True)"
SYNC_BN = "dict(type='SyncBN', requires_grad=True)"

CONFIG_TEMPLATE = '''\
default_scope = 'mmseg'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)
data_root = {data_root!r}
norm_cfg = {norm_cfg}
conv_cfg = dict(type={conv_type!r})
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
        seg_pad_val=255, size=(64, 128)),
    backbone=dict(
        type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
        num_stages=4, out_indices=(3, ), strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1), norm_cfg=norm_cfg,
        conv_cfg={backbone_conv_cfg},
        norm_eval=False, style='pytorch', init_cfg=None),
    decode_head=dict(
        type='FCNHead', in_channels=64, in_index=0, channels=16, num_convs=1,
        concat_input=False, dropout_ratio=0.0, num_classes=19,
        norm_cfg=norm_cfg, conv_cfg=conv_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
pipeline = [
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CityscapesDataset', data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train',
                         seg_map_path='gtFine/train'),
        pipeline=pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset', data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val',
                         seg_map_path='gtFine/val'),
        pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={val_interval})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[{milestone}],
         gamma=0.5)
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={checkpoint_interval}),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='FoldHook', log_complexity=False)]
log_processor = dict(by_epoch=False)
log_level = 'INFO'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, deterministic=True)
visualizer = dict(type='SegLocalVisualizer',
                  vis_backends=[dict(type='LocalVisBackend')])
load_from = None
resume = False
'''


def make_data(root: str, num_train: int = 8, num_val: int = 4) -> str:
    """Tiny Cityscapes (64x128 images) under ``root``; returns ``root``."""
    make_tiny_cityscapes(root, num_train=num_train, num_val=num_val,
                         size=(128, 64), seed=0)
    return root


def write_config(path: str,
                 data_root: str,
                 conv_type: str = 'DOConv',
                 batch_size: int = 4,
                 max_iters: int = 4,
                 val_interval: Optional[int] = None,
                 checkpoint_interval: Optional[int] = None,
                 milestone: int = 2,
                 norm_cfg: str = GROUP_NORM,
                 backbone_variant: bool = True) -> str:
    """Write the tiny segmenter config to ``path``; returns ``path``.

    ``conv_type`` is used in the decode head and, with ``backbone_variant``,
    in every backbone conv (1x1 shortcuts included).
    """
    text = CONFIG_TEMPLATE.format(
        backbone_conv_cfg='conv_cfg' if backbone_variant else 'None',
        norm_cfg=norm_cfg,
        data_root=str(data_root),
        conv_type=conv_type,
        batch_size=batch_size,
        max_iters=max_iters,
        val_interval=val_interval or max_iters,
        checkpoint_interval=checkpoint_interval or max_iters,
        milestone=milestone)
    with open(path, 'w') as file:
        file.write(text)
    return path


def child_env(**extra: str) -> Dict[str, str]:
    """Environment for a tool subprocess: one thread per process, so the
    1-process and 2-process runs use the same kernels."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + env.get('PYTHONPATH', ''),
               PYTHON=sys.executable)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def train_command(config: str, work_dir: str, *extra: str) -> List[str]:
    return [sys.executable, TRAIN, config, '--work-dir', work_dir, *extra]


def dist_train_command(config: str, work_dir: str, nproc: int,
                       *extra: str) -> List[str]:
    return ['bash', DIST_TRAIN, config, str(nproc), '--work-dir', work_dir,
            *extra]


#: What torch's gloo backend prints when a worker aborts in its C++
#: teardown after the Python program has finished (SIGABRT at exit, so
#: torchrun reports the run as failed). Seen in 2 of 3 full-suite runs on
#: the 2-core CI machine for the 2-process run below, never in 9 runs of the
#: test alone; not caused by the run itself (training and validation had
#: completed on both ranks).
GLOO_TEARDOWN_ABORT = 'terminate called without an active exception'
#: Reruns after such an abort alone. One was not enough on the loaded 2-core
#: machine (a full ``make test`` on 2026-12-02 aborted twice in a row).
TEARDOWN_RETRIES = 2


def _teardown_abort_only(result: subprocess.CompletedProcess) -> bool:
    return (result.returncode != 0
            and GLOO_TEARDOWN_ABORT in result.stderr
            and 'Traceback (most recent call last)' not in
            result.stderr.split(GLOO_TEARDOWN_ABORT)[0])


def run(command: List[str], timeout: float = 240,
        **env: str) -> subprocess.CompletedProcess:
    """Run a tool; on failure raise with its output (for a readable test).

    A multi-process run whose only failure is gloo's teardown abort
    (:data:`GLOO_TEARDOWN_ABORT`, no Python traceback before it) is run
    again from a clean work dir, up to :data:`TEARDOWN_RETRIES` times; any
    other failure raises at once.
    """
    result = subprocess.run(command, cwd=REPO, env=child_env(**env),
                            capture_output=True, text=True, timeout=timeout)
    for _ in range(TEARDOWN_RETRIES):
        if not (_teardown_abort_only(result) and '--work-dir' in command):
            break
        shutil.rmtree(command[command.index('--work-dir') + 1],
                      ignore_errors=True)
        result = subprocess.run(command, cwd=REPO, env=child_env(**env),
                                capture_output=True, text=True,
                                timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f'{" ".join(command)} exited {result.returncode}\n'
            f'--- stdout ---\n{result.stdout[-6000:]}\n'
            f'--- stderr ---\n{result.stderr[-6000:]}')
    return result


def state_dict(path: str) -> Dict[str, torch.Tensor]:
    return load_checkpoint_file(path)['state_dict']


def max_abs_difference(a: Dict[str, torch.Tensor],
                       b: Dict[str, torch.Tensor]) -> float:
    if set(a) != set(b):
        raise AssertionError(f'different keys: {sorted(set(a) ^ set(b))}')
    return max(float((a[k].double() - b[k].double()).abs().max())
               for k in a if a[k].numel())


def val_metrics(work_dir: str) -> Dict[str, float]:
    """The last validation metrics in the run's ``vis_data/scalars.json``."""
    found = {}
    for stamp in sorted(os.listdir(work_dir)):
        scalars = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(scalars):
            continue
        with open(scalars) as file:
            for line in file:
                record = json.loads(line)
                if 'mIoU' in record:
                    found = record
    if not found:
        raise AssertionError(f'no validation metrics under {work_dir}')
    return found


def logs(work_dir: str) -> str:
    """All ``*.log`` text the runs wrote in ``work_dir``."""
    text = []
    for stamp in sorted(os.listdir(work_dir)):
        log = osp.join(work_dir, stamp, f'{stamp}.log')
        if osp.isfile(log):
            with open(log) as file:
                text.append(file.read())
    return '\n'.join(text)
