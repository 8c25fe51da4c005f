"""Convert a plain pretrained checkpoint into the init of a variant model.

    python tools/convert_pretrained.py IN OUT --variant doconv|refconv|condconv
        [--config CFG]

Each plain conv kernel becomes the variant layer that computes exactly the
same function (DO-Conv: W = kernel, D at identity; RefConv: basis = kernel;
CondConv: experts from the kernel), so fine-tuning starts from the
pretrained network. IN may be a bare state dict, or hold it under
``state_dict`` (mmengine) or ``model`` (detectron2, many training scripts);
a DDP ``module.`` prefix is stripped, as mmengine's loader does. OUT holds
the converted weights under ``state_dict`` (where mmengine's ``Pretrained``
init reads them); non-conv keys (norms, heads) are kept, ``meta`` and other
top-level entries as plain data; training state (``message_hub``,
``optimizer``...) is dropped, so plain ``torch.load(weights_only=True)``
reads OUT without mmconvplug. Every line printed, and every error, names the
layout found in IN. With ``--config`` only the convs that are variants in
that config's model are converted, with their hyper-parameters; without it
every 4-d conv kernel is. OUT must not exist: the tool never overwrites.
Point the variant config's ``init_cfg=dict(type='Pretrained',
checkpoint=OUT)`` at the result.
"""
import argparse
import os
import sys

import torch

import mmconvplug  # noqa: F401  (registers the variants; torch.load globals)
from mmconvplug.convert import VARIANT_TYPES, convert_checkpoint
from mmconvplug.utils import atomic_save, load_checkpoint_file


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('input', help='plain checkpoint (.pth)')
    parser.add_argument('output', help='converted checkpoint (new file)')
    parser.add_argument(
        '--variant', required=True, choices=sorted(VARIANT_TYPES))
    parser.add_argument(
        '--config',
        help='variant model config: convert exactly its variant convs')
    return parser.parse_args(argv)


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


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.path.exists(args.output):
        raise SystemExit(
            f'convert_pretrained: {args.output} exists; refusing to '
            'overwrite it. Pick a new output path or remove the file.')
    checkpoint = load_checkpoint_file(args.input)
    model = build_model(args.config) if args.config else None
    result = convert_checkpoint(checkpoint, args.variant, model=model)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    # new file only; never a partial one
    atomic_save(result.checkpoint, args.output)
    layout = result.layout.name
    for line in result.summary(args.variant).splitlines():
        print(f'convert_pretrained [{layout}]: {line}')
    print(f'convert_pretrained [{layout}]: wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
