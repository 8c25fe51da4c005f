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

``python tools/benchmark.py MODE --help`` lists each mode's options.
"""
import sys

import mmconvplug  # noqa: F401  (registers the variants)
from mmconvplug.benchmarks import layers, models, train

MODES = dict(layers=layers.main, models=models.main, train=train.main)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        print(__doc__)
        return 2
    return MODES[sys.argv[1]](sys.argv[2:]) or 0


if __name__ == '__main__':
    sys.exit(main())
