"""Benchmarks, reported as ratios measured in one run.

    python tools/benchmark.py layers [--shapes mission|imagenet|condconv|all]
        each conv variant (and timm's CondConv2d when installed) vs
        nn.Conv2d of the same shape: train step, eval unfolded / folded,
        parameters, peak memory.
    python tools/benchmark.py models
        SSD300, Mask R-CNN R50-FPN, DeepLabv3+ R50: params and FLOPs trained
        vs folded, inference time folded vs the stock plain model.
    python tools/benchmark.py train [--models ...] [--variants ...]
        whole-model train step of each variant, built from the plain
        model's weights, vs the plain model: time and peak memory.

``python tools/benchmark.py MODE --help`` lists each mode's options. The
code is :mod:`mmconvplug.cli.benchmark` (``mmconvplug benchmark MODE``, the
same command line).
"""
import sys
from typing import List, Optional

from mmconvplug.cli import benchmark as command
from mmconvplug.cli import standalone_main


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
