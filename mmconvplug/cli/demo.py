"""``mmconvplug demo`` (and ``tools/demo.py``, ``make demo``).

Trains plain and conv-variant versions of a small model on a tiny dataset
with the real mmengine Runner, folds them, tests and times them; the work
is :mod:`mmconvplug.demo`.
"""
import argparse
import sys

from mmconvplug.demo import TASKS, DemoOptions, demo_variants, run_demo
from mmconvplug.demo.tasks import resolve_config

DESCRIPTION = """train plain and conv-variant versions of a small model on a
tiny dataset, fold them, test and time them

Writes <out>/demo.png and <out>/results.json; the tiny dataset is generated
under --data-root when missing."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``demo``'s options."""
    parser.add_argument('--task', choices=sorted(TASKS), default='det',
                        help='det: SSD on tiny VOC (default); seg: '
                        'DeepLabv3+ on tiny Cityscapes; kpt: Keypoint R-CNN '
                        'on tiny COCO keypoints')
    parser.add_argument('--iters', type=int,
                        help='training iterations per variant (default: '
                        'det 120, seg 80, kpt 200)')
    parser.add_argument('--out', default='outputs/demo',
                        help='output folder (default: outputs/demo)')
    parser.add_argument('--variants', nargs='+',
                        default=['baseline', 'doconv', 'refconv'],
                        choices=list(demo_variants()),
                        help='variants to train (default: baseline doconv '
                        'refconv); the first one is the timing reference')
    parser.add_argument('--data-root', default='data/tiny',
                        help='where the tiny datasets live (default: '
                        'data/tiny); generated when missing')
    parser.add_argument('--num-train', type=int,
                        help='training images to generate (default per task)')
    parser.add_argument('--num-val', type=int,
                        help='validation images to generate (default per '
                        'task)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed for data and training (default: 0)')
    parser.add_argument('--timing-rounds', type=int, default=5,
                        help='interleaved rounds of inference timing '
                        '(default: 5)')


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Run the demo; the exit status (2: a bad option)."""
    for name in ('iters', 'num_train', 'num_val', 'timing_rounds'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got '
                         f'{value}')
    try:
        resolve_config(TASKS[args.task])
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    run_demo(DemoOptions(**vars(args)))
    return 0
