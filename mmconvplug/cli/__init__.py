"""The ``mmconvplug`` command: one argparse sub-command per task.

    mmconvplug {train,test,fold,export,swap,benchmark,demo,info,configs,
                convert,datasets} ...

Each sub-command is one module here with ``DESCRIPTION`` (a one-paragraph
summary, then details), ``add_arguments(parser)`` and
``run(args, parser) -> int`` (the exit status; ``parser.error`` for a bad
option). ``benchmark`` has modes of its
own (``layers``, ``models``, ``train``). The repository's ``tools/*.py``
scripts are thin shells over the same modules (:func:`standalone_main`),
with the command lines of mmdet's and mmseg's tools.
"""
import argparse
import importlib
from types import ModuleType
from typing import Dict, List, Optional

#: Sub-command name -> module under :mod:`mmconvplug.cli`.
COMMANDS: Dict[str, str] = {
    'train': 'train',
    'test': 'test',
    'fold': 'fold',
    'export': 'export',
    'swap': 'swap',
    'benchmark': 'benchmark',
    'demo': 'demo',
    'info': 'info',
    'configs': 'configs',
    'convert': 'convert',
    'datasets': 'datasets',
}

_COMMAND_KEY = '_mmconvplug_command'


def attach(parser: argparse.ArgumentParser, module: ModuleType) -> None:
    """Declare ``module``'s options on ``parser``; parsing it selects the
    module's ``run`` (a module without one, e.g. ``benchmark``, adds
    sub-parsers that attach their own)."""
    module.add_arguments(parser)
    if hasattr(module, 'run'):
        parser.set_defaults(**{_COMMAND_KEY: (module.run, parser)})


def _summary(description: str) -> str:
    """The first paragraph of a ``DESCRIPTION``, on one line."""
    return ' '.join(description.split('\n\n')[0].split())


def command_parser(module: ModuleType,
                   prog: Optional[str] = None) -> argparse.ArgumentParser:
    """A stand-alone parser of one sub-command (what ``tools/`` uses)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=module.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    attach(parser, module)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``mmconvplug`` parser with every sub-command of
    :data:`COMMANDS`."""
    from mmconvplug.version import __version__
    parser = argparse.ArgumentParser(
        prog='mmconvplug',
        description='mmconvplug: conv variants for MMDetection and '
        'MMSegmentation that fold back to plain convs.')
    parser.add_argument('--version', action='version',
                        version=f'mmconvplug {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f'{__name__}.{module_name}')
        command = sub.add_parser(
            name, help=_summary(module.DESCRIPTION),
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        attach(command, module)
    return parser


def run_parsed(parser: argparse.ArgumentParser,
               argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` and run the sub-command it selects; its exit status."""
    args = parser.parse_args(argv)
    run, command_parser_ = vars(args).pop(_COMMAND_KEY)
    vars(args).pop('command', None)
    return run(args, command_parser_) or 0


def standalone_main(module: ModuleType,
                    argv: Optional[List[str]] = None) -> int:
    """Run one sub-command on its own: ``tools/<name>.py``."""
    return run_parsed(command_parser(module), argv)


def main(argv: Optional[List[str]] = None) -> int:
    """The ``mmconvplug`` command (``python -m mmconvplug``)."""
    return run_parsed(build_parser(), argv)
