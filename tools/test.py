"""Test an mmdet or mmseg checkpoint, folded by default.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher ...]
        [--no-fold | --compare] [--fuse-bn] [--tolerance 1e-3]

The command line of mmdet's / mmseg's ``tools/test.py``. The plugin is
imported here (configs without ``custom_imports`` still work) and the
config's ``default_scope`` picks the library. By default a ``FoldHook`` is
added to ``custom_hooks`` (unless the config has one): the model under test
is folded and its outputs checked on the first batch. ``--no-fold`` tests
the model as trained; ``--compare`` runs both and prints the metrics side by
side. A ``CheckpointFitHook`` (unless the config has one) refuses a folded
checkpoint with the training config (or the reverse) instead of testing
random weights, and names what a partial checkpoint leaves unfilled.

``--out``: mmdet: a ``.pkl`` of the predictions (``DumpDetResults``);
mmseg: a directory for the predicted maps. ``--show-dir``: painted results.

The code is :mod:`mmconvplug.cli.test` (``mmconvplug test``, the
same command line).
"""
import sys
from typing import List, Optional

from mmconvplug.cli import standalone_main
from mmconvplug.cli import test as command


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
