"""Fold a trained checkpoint into plain convs, for evaluation and deployment.

    python tools/fold.py CONFIG CHECKPOINT OUT.pth [--cfg-options k=v ...]
        [--shape H W] [--tolerance 1e-3]

Writes ``OUT.pth`` (the folded weights and the checkpoint's ``meta`` as plain
data; training state dropped, so plain ``torch.load(weights_only=True)``
reads it without mmconvplug) and the deploy config ``OUT.py`` next to it.
When every conv variant in the model folds into a plain conv, the deploy
config is the stock architecture and needs no ``custom_imports``: test it
with stock mmdet / mmseg tools (``python mmdet/tools/test.py OUT.py
OUT.pth``). Otherwise the layers that
stayed are listed and the deploy config keeps them.

Before writing anything the folded weights are loaded, ``strict=True``, into
the deploy config's model and its outputs are compared with the trained
model's on a random input; existing files are never overwritten.

The code is :mod:`mmconvplug.cli.fold` (``mmconvplug fold``, the
same command line).
"""
import sys
from typing import List, Optional

from mmconvplug.cli import fold as command
from mmconvplug.cli import standalone_main


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
