"""Benchmarks, reported as ratios measured in one run.

    python tools/benchmark.py layers [--shapes mission|imagenet|all] [--json OUT]
        each conv variant vs nn.Conv2d of the same shape: train-step time,
        eval time unfolded / folded, parameters, peak memory.
    python tools/benchmark.py models [--json OUT]
        SSD300, Mask R-CNN R50-FPN, DeepLabv3+ R50: params and FLOPs trained
        vs folded, inference time folded vs the stock plain model.
"""
import sys

import mmconvplug  # noqa: F401  (registers the variants)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ('layers', 'models'):
        print(__doc__)
        return 2
    mode, argv = sys.argv[1], sys.argv[2:]
    if mode == 'layers':
        from mmconvplug.benchmarks.layers import main as run
    else:
        from mmconvplug.benchmarks.models import main as run
    return run(argv) or 0


if __name__ == '__main__':
    sys.exit(main())
