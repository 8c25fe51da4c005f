"""Train with ``tools/train.py``, then ``--resume`` it, for one or more
configs in one torchrun launch::

    python -m torch.distributed.run --nproc_per_node 2 \
        tests/distributed/train_and_resume.py FIRST TOTAL \
        CONFIG WORK_DIR [CONFIG WORK_DIR ...] [--cfg-options k=v ...]

For each config, run 1 is ``train.py CONFIG --work-dir WORK_DIR --launcher
pytorch --cfg-options train_cfg.max_iters=FIRST k=v ...``; run 2 the same
with ``--resume`` and ``train_cfg.max_iters=TOTAL``: it builds a new Runner,
model and dataloaders and resumes from the latest checkpoint run 1 wrote in
WORK_DIR. The runs share the processes (and the process group) only to spare
the 2-process tests a start-up (imports) per run. Stops at the first failure
(a rank that goes on would wait for the other in a collective) and exits
non-zero; ``WORK_DIR/done`` marks each config that completed.
"""
import importlib.util
import os.path as osp
import sys
import traceback

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _train_tool():
    spec = importlib.util.spec_from_file_location(
        'mmconvplug_tool_train', osp.join(REPO, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    options = []
    if '--cfg-options' in argv:
        at = argv.index('--cfg-options')
        argv, options = argv[:at], argv[at + 1:]
    first, total, *pairs = argv
    if not pairs or len(pairs) % 2:
        raise SystemExit('usage: FIRST TOTAL CONFIG WORK_DIR [...]')
    train = _train_tool()
    from mmengine.dist import get_rank
    for config, work_dir in zip(pairs[::2], pairs[1::2]):
        for iters, resume in ((first, []), (total, ['--resume'])):
            try:
                code = train.main([
                    config, '--work-dir', work_dir, '--launcher', 'pytorch',
                    *resume, '--cfg-options', f'train_cfg.max_iters={iters}',
                    *options
                ])
            except Exception:
                traceback.print_exc()
                code = 1
            if code:
                print(f'FAILED: {config} (max_iters={iters}'
                      f'{", --resume" if resume else ""})', file=sys.stderr)
                return code
        if get_rank() == 0:
            open(osp.join(work_dir, 'done'), 'w').close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
