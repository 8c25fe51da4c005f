"""``mmconvplug swap CONFIG``: a config's ``conv_swap``, without training.

Builds the config's model the way the Runner does (no weights initialised
or loaded, nothing downloaded) and prints its swap reports, or lists the
model's convs to help write patterns; the work is
:func:`mmconvplug.apis.swap_reports_of_config`.
"""
import argparse
import logging
import sys

from mmengine.config import DictAction
from mmengine.logging import MMLogger

from mmconvplug.apis import (
    has_conv_swap,
    init_model,
    load_config,
    swap_reports_of_config,
)
from mmconvplug.swap import ConvSwapConfigError, conv_table

DESCRIPTION = """report a config's conv_swap: swapped convs, kernel sizes,
parameters before/after, skipped convs and why"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``swap``'s options."""
    parser.add_argument('config', help='the config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config (key=value)')
    parser.add_argument(
        '--list', nargs='*', metavar='PATTERN', default=None,
        help='also list the convs of the built model (those under the '
        'given module-name patterns), to write include/exclude patterns')


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Print the swap report(s) of ``args.config``; the exit status."""
    # Builds log through mmengine's current logger: keep this output to
    # the report printed below.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        cfg = load_config(args.config, args.cfg_options)
        if args.list is not None and not has_conv_swap(cfg.model.to_dict()):
            model, reports = init_model(cfg), []
        else:
            model, reports = swap_reports_of_config(cfg)
    except (ConvSwapConfigError, ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    finally:
        logger.setLevel(level)
    for report in reports:
        print(report.table())
    if args.list is not None:
        print(conv_table(model, args.list))
    return 0
