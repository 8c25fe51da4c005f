"""``mmconvplug convert`` (and ``tools/convert_pretrained.py``).

Turns a plain pretrained checkpoint into the exact init of a variant model
(:func:`mmconvplug.convert.convert_state_dict`); never overwrites.
"""
import argparse
import os

from mmconvplug.apis import init_model
from mmconvplug.convert import VARIANT_TYPES, convert_checkpoint
from mmconvplug.utils import atomic_save, load_checkpoint_file

DESCRIPTION = """convert a plain pretrained checkpoint into the init of a
variant model

Each plain conv kernel becomes the variant layer computing the same
function; with --config only that model's variant convs are converted.
OUT must not exist."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``convert``'s options."""
    parser.add_argument('input', help='plain checkpoint (.pth)')
    parser.add_argument('output', help='converted checkpoint (new file)')
    parser.add_argument(
        '--variant', required=True, choices=sorted(VARIANT_TYPES))
    parser.add_argument(
        '--config',
        help='variant model config: convert exactly its variant convs')


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Convert as the parsed command line says; the exit status."""
    if os.path.exists(args.output):
        raise SystemExit(
            f'convert_pretrained: {args.output} exists; refusing to '
            'overwrite it. Pick a new output path or remove the file.')
    checkpoint = load_checkpoint_file(args.input)
    # Built as every tool builds it; not initialised, nothing downloaded.
    model = init_model(args.config) if args.config else None
    result = convert_checkpoint(checkpoint, args.variant, model=model)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    # new file only; never a partial one
    atomic_save(result.checkpoint, args.output)
    layout = result.layout.name
    for line in result.summary(args.variant).splitlines():
        print(f'convert_pretrained [{layout}]: {line}')
    print(f'convert_pretrained [{layout}]: wrote {args.output}')
    return 0
