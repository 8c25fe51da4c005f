"""Export a model to ONNX with a dynamic batch axis, checked in onnxruntime.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]
        [--batch-size 2] [--check-batch-sizes 1 3] [--tolerance 1e-4]
        [--cfg-options k=v ...]

CONFIG/CHECKPOINT: a training config with its trained checkpoint (the
foldable conv variants are folded first; CondConv and SCConv are traced as
they are), or a ``tools/fold.py`` deploy config with its folded checkpoint.
The graph takes the preprocessed image batch and returns the raw head
outputs (``mode='tensor'``); it is written only after onnxruntime matches
the eager model at every checked batch size. Single-stage detectors (SSD)
and segmentors. Needs ``pip install mmconvplug[deploy]``.

The code is :mod:`mmconvplug.cli.export` (``mmconvplug export``, the
same command line).
"""
import sys
from typing import List, Optional

from mmconvplug.cli import export as command
from mmconvplug.cli import standalone_main


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
