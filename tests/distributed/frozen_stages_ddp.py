"""Frozen stages under DDP's default flags, every variant, one launch::

    python -m torch.distributed.run --nproc_per_node 2 \
        tests/distributed/frozen_stages_ddp.py RESULT_JSON \
        CONFIG WORK_DIR [--cfg-options k=v ...]

1. Per registered variant (mmconvplug's own): mmdet's ResNet-18 (narrow)
   with ``frozen_stages=1`` and the variant through ``conv_swap`` (those
   with an exact ``from_conv``) and through ``conv_cfg``, wrapped in
   ``DistributedDataParallel`` with its default flags right after the
   build, as the Runner does (wrap, then ``init_weights``, then
   ``train()`` in the loop), and trained ``ITERS`` SGD steps on each rank's
   own random batch. Rank 0 writes, per case, each rank's record: the
   error if any, the frozen-stage tensors that required grad when DDP
   wrapped the model, whether the frozen stages stayed unchanged and the
   rest trained, and a checksum of the parameters (equal on both ranks).
2. ``tools/train.py CONFIG --work-dir WORK_DIR --launcher pytorch`` (the
   real Runner and DDP wrapper; the config adds ``FrozenStageProbeHook``).

Before the fix the second step of every ``conv_swap`` case stopped with
"Expected to have finished reduction in the prior iteration": the swap had
built trainable variants in the frozen stage, DDP registered them, and
``ResNet.train()`` froze them again.
"""
import hashlib
import json
import os
import sys
import traceback

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

#: SGD steps per variant case (the failure showed at the second).
ITERS = 3
FROZEN_PREFIXES = ('conv1.', 'norm1.', 'layer1.')


def cases() -> list:
    from mmconvplug.convs import conv_variants
    from mmconvplug.swap.spec import swappable_variants
    names = sorted(n for n, c in conv_variants().items()
                   if c.__module__.startswith('mmconvplug.'))
    return ([(n, 'conv_cfg') for n in names] +
            [(n, 'conv_swap') for n in names if n in swappable_variants()])


def checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_case(name: str, route: str) -> dict:
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = dict(type='ResNet', depth=18, base_channels=8, frozen_stages=1,
               norm_eval=False, init_cfg=None)
    cfg[route] = dict(type=name)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    frozen = {n: p for n, p in model.named_parameters()
              if n.startswith(FROZEN_PREFIXES)}
    record = dict(trainable_frozen_at_wrap=sorted(
        n for n, p in frozen.items() if p.requires_grad), error=None)
    ddp = DistributedDataParallel(model)  # default flags
    model.init_weights()  # seeded above: the same on both ranks
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                                weight_decay=1e-4)
    generator = torch.Generator().manual_seed(1 + dist.get_rank())
    try:
        for _ in range(ITERS):
            ddp.train()
            outs = ddp(torch.randn(2, 3, 32, 32, generator=generator))
            loss = sum(out.mean() for out in outs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    except Exception:  # recorded; the test shows it
        record['error'] = traceback.format_exc(limit=3)[-1500:]
    with torch.no_grad():
        changed = {n for n, p in model.named_parameters()
                   if not torch.equal(p, start[n])}
    record.update(
        frozen_changed=sorted(changed & set(frozen)),
        trained=bool(changed - set(frozen)),
        checksum=checksum(model))
    return record


def main(argv) -> int:
    options = []
    if '--cfg-options' in argv:
        at = argv.index('--cfg-options')
        argv, options = argv[:at], argv[at + 1:]
    result_path, config, work_dir = argv
    import mmconvplug  # noqa: F401
    dist.init_process_group('gloo')  # the Runner below reuses it
    results = {}
    for name, route in cases():
        record = run_case(name, route)
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, record)
        results[f'{name}-{route}'] = gathered
    if dist.get_rank() == 0:
        with open(result_path, 'w') as file:
            json.dump(results, file)
    from train_and_resume import _train_tool
    extra = ['--cfg-options', *options] if options else []
    return _train_tool().main(
        [config, '--work-dir', work_dir, '--launcher', 'pytorch', *extra])


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    sys.exit(main(sys.argv[1:]))
