"""``mmconvplug configs``: the configs this installation ships.

Prints the absolute path of every config (one a line), to pass to
``mmconvplug train`` / ``swap`` / ``test`` or to inherit from. They are the
wheel's ``mmconvplug/.mim/configs`` when installed, the checkout's
``configs/`` in an editable install (:mod:`mmconvplug.configs_path`).
"""
import argparse
import fnmatch
import os.path as osp
import sys

from mmconvplug.configs_path import configs_root, list_configs

DESCRIPTION = """list the packaged configs with their absolute paths

PATTERN (shell-style, matched against the path under the configs folder)
keeps only the matching ones, e.g. 'doconv/*' or '*tiny*'."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``configs``' options."""
    parser.add_argument('patterns', nargs='*', metavar='PATTERN',
                        help="only configs matching one of these (e.g. "
                        "'doconv/*')")
    parser.add_argument('--root', action='store_true',
                        help='print only the configs folder')


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Print the configs (or their folder); 1 when a pattern matches none."""
    root = configs_root()
    if args.root:
        print(root)
        return 0
    paths = [path for path in list_configs() if not args.patterns or any(
        fnmatch.fnmatch(osp.relpath(path, root), pattern)
        for pattern in args.patterns)]
    if not paths:
        print(f'error: no config under {root} matches '
              f'{" ".join(args.patterns)}; run `mmconvplug configs` for all '
              'of them.', file=sys.stderr)
        return 1
    print('\n'.join(paths))
    return 0
