"""mmengine's distributed set-up works on CPU; SyncBN falls back to BN.

* ``init_dist('pytorch', backend='gloo')`` and ``MMDistributedDataParallel``
  with the ``device_ids=[LOCAL_RANK]`` the Runner passes both work on a
  CPU-only torch once :func:`enable_cpu_distributed` is installed (a
  one-process gloo group here; the 2-process run is in
  ``test_robustness_ddp.py``).
* A SyncBN config trains on one process: mmengine's Runner reverts SyncBN to
  BatchNorm when not distributed, as the stock configs rely on.
"""
import gc
import socket

import pytest
import torch
from mmengine.config import Config
from mmengine.dist import init_dist
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.runner import Runner
from robustness_tiny_seg import SYNC_BN, make_data, write_config
from torch import distributed as torch_dist
from torch import nn

from mmconvplug.compat import enable_cpu_distributed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_set_device_is_what_breaks_on_cpu():
    """The upstream call the fix skips really fails on a CPU-only torch."""
    with pytest.raises((AttributeError, RuntimeError, AssertionError)):
        torch.cuda.set_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_pytorch_launcher_and_ddp_wrapper_work_on_cpu(monkeypatch):
    enable_cpu_distributed()
    enable_cpu_distributed()  # idempotent
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(_free_port()))
    assert not torch_dist.is_initialized()
    init_dist('pytorch', backend='gloo')
    model = None
    try:
        assert torch_dist.get_backend() == 'gloo'
        model = MMDistributedDataParallel(
            module=nn.Linear(3, 2), device_ids=[0], broadcast_buffers=False)
        assert model.device_ids is None
        loss = model(torch.ones(4, 3)).sum()
        loss.backward()
        assert model.module.weight.grad is not None
    finally:
        # Free DDP's reducer while its process group is alive: a reducer
        # freed after destroy_process_group can hang joining gloo's worker
        # thread in ~ProcessGroupGloo (seen once in a full run here).
        del model
        gc.collect()
        torch_dist.destroy_process_group()


@pytest.mark.slow
def test_syncbn_config_trains_on_one_process(tmp_path):
    data_root = make_data(str(tmp_path / 'data'), num_train=2, num_val=1)
    config = write_config(
        str(tmp_path / 'syncbn.py'), data_root, batch_size=2, max_iters=1,
        norm_cfg=SYNC_BN)
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.custom_hooks = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    norms = [type(m).__name__ for m in runner.model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and 'SyncBatchNorm' not in norms
    assert runner.iter == 1
