"""Let mmengine 0.10.7 run distributed data-parallel training on CPUs (gloo).

``tools/dist_train.sh`` with ``--launcher pytorch`` and
``env_cfg.dist_cfg.backend='gloo'`` should train on CPU-only machines (CI,
debugging a multi-GPU config on a laptop). Two spots in mmengine assume a GPU:

* ``mmengine.dist.utils._init_dist_pytorch`` always calls
  ``torch.cuda.set_device(local_rank)``, which raises on a CPU-only torch
  (``module 'torch._C' has no attribute '_cuda_setDevice'``) before the
  process group is created;
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
  ``MMDistributedDataParallel``, which torch refuses for a CPU module
  ("device_ids ... only work with single-device/multiple-device GPU modules").

The fix skips ``set_device`` when no CUDA device exists, and drops
``device_ids`` when the wrapped module lives on the CPU (torch's rule for CPU
modules). With a GPU neither patch changes anything.

mmengine never destroys the process group it creates; torch asks for
``destroy_process_group`` before exit, so the CPU path registers it to run
at exit. (It does not prevent every teardown abort of torch's gloo backend:
a worker can still, rarely, end with SIGABRT and "terminate called without
an active exception" after its run completed; see docs/distributed.md.)

Applies to mmengine 0.7.0 - 0.10.7 (``device_ids=[LOCAL_RANK]`` since
https://github.com/open-mmlab/mmengine/pull/973; 0.10.7 is the newest
release, still affected). No upstream issue tracks CPU-only launches; the
code is ``_init_dist_pytorch`` in ``mmengine/dist/utils.py`` and
``Runner.wrap_model`` in ``mmengine/runner/runner.py``.
"""
import atexit
import functools

import torch
from mmengine.dist import utils as dist_utils
from mmengine.model.wrappers import MMDistributedDataParallel
from torch import distributed as torch_dist

from .upstream import UpstreamChange


def _module_is_on_cpu(module: torch.nn.Module) -> bool:
    tensors = list(module.parameters()) + list(module.buffers())
    return bool(tensors) and all(t.device.type == 'cpu' for t in tensors)


def _accelerator_available() -> bool:
    return bool(torch.cuda.is_available() or dist_utils.is_mlu_available()
                or dist_utils.is_npu_available()
                or dist_utils.is_musa_available())


def _destroy_process_group_at_exit() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _patch_init_dist_pytorch() -> None:
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_mmconvplug_patched', False):
        return

    @functools.wraps(original)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        if _accelerator_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        torch_dist.init_process_group(backend=backend, **kwargs)
        atexit.register(_destroy_process_group_at_exit)

    _init_dist_pytorch._mmconvplug_patched = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def _patch_ddp_device_ids() -> None:
    original_init = MMDistributedDataParallel.__init__
    if getattr(original_init, '_mmconvplug_patched', False):
        return

    @functools.wraps(original_init)
    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        if kwargs.get('device_ids') is not None and _module_is_on_cpu(module):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        original_init(
            self,
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)

    __init__._mmconvplug_patched = True
    MMDistributedDataParallel.__init__ = __init__


def enable_cpu_distributed() -> None:
    """Install both fixes (idempotent)."""
    _patch_init_dist_pytorch()
    _patch_ddp_device_ids()


FIX = UpstreamChange(
    name='cpu_distributed',
    package='mmengine',
    versions='>=0.7.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/pull/973',
    summary='--launcher pytorch on a CPU-only machine fails in '
    'torch.cuda.set_device and in DDP(device_ids=[LOCAL_RANK])',
    apply=enable_cpu_distributed)
