"""Train an mmdet or mmseg model with the mmconvplug variants available.

The same command line as mmdet's and mmseg's ``tools/train.py``::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}] [--local_rank N]

The plugin is imported here, so a config that forgets
``custom_imports=dict(imports=['mmconvplug'])`` still finds ``DOConv``,
``FoldHook`` and the rest. The config's ``default_scope`` (``mmdet`` or
``mmseg``) decides which library's registries build the model, datasets and
metrics. Many GPUs: ``torchrun --nproc_per_node=8 tools/train.py CFG
--launcher pytorch`` (or ``tools/dist_train.sh`` / ``tools/slurm_train.sh``).

The code is :mod:`mmconvplug.cli.train` (``mmconvplug train``, the same
command line).
"""
import sys
from typing import List, Optional

from mmconvplug.cli import standalone_main
from mmconvplug.cli import train as command
from mmconvplug.cli.train import build_config, build_runner, parse_args  # noqa: F401


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
