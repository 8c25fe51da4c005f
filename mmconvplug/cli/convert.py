"""``mmconvplug convert`` (and ``tools/convert_pretrained.py``).

Turns a plain pretrained checkpoint into the exact init of a variant model
(:func:`mmconvplug.convert.convert_state_dict`); never overwrites.
"""
import argparse
import os

import torch

from mmconvplug.convert import (VARIANT_TYPES, convert_state_dict,
                                split_checkpoint)
from mmconvplug.utils import atomic_save, load_checkpoint_file
from mmconvplug.utils.checkpoint_io import plain_checkpoint

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


def build_model(config_path: str) -> torch.nn.Module:
    """Build (without initialising or downloading) the config's model."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(config_path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Convert as the parsed command line says; the exit status."""
    if os.path.exists(args.output):
        raise SystemExit(
            f'convert_pretrained: {args.output} exists; refusing to '
            'overwrite it. Pick a new output path or remove the file.')
    checkpoint = load_checkpoint_file(args.input)
    state_dict, holder = split_checkpoint(checkpoint)
    model = build_model(args.config) if args.config else None
    new_state, converted = convert_state_dict(state_dict, args.variant,
                                              model=model)
    if holder is None:
        out = new_state
    else:
        out, _ = plain_checkpoint(new_state, checkpoint.get('meta'),
                                  state_dict_key=holder)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    atomic_save(out, args.output)  # new file only; never a partial one
    print(f'converted {len(converted)} convs to {args.variant} '
          f'({sum(k in new_state for k in state_dict)} other keys kept) -> '
          f'{args.output}')
    return 0
