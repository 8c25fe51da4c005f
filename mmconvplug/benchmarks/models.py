"""``mmconvplug benchmark models``: what folding buys on whole models.

    mmconvplug benchmark models [--variant DOConv] [--quick]
        [--models ssd300 mask_rcnn deeplabv3plus] [--iters N] [--json OUT]

For SSD300, Mask R-CNN R50-FPN and DeepLabv3+ R50 (the stock mmdet / mmseg
configs), every conv that honours ``conv_cfg`` is built as ``--variant``,
and SSD's VGG (mmdet's ``SSDVGG`` hard-codes ``nn.Conv2d``) through a
``conv_swap`` of that variant. We report

* parameters and FLOPs (mmengine ``FlopAnalyzer``, multiply-adds, of the
  raw ``mode='tensor'`` eval forward) of the trained-form model and of its
  fold (DOConv / RefConv cache their composed kernel in eval, so their eval
  FLOPs equal the fold's; the composition costs only in training);
* inference time of the folded model vs the stock plain model built from
  the stock config, carrying the same (folded) weights -- timed in
  alternation, the ratio is of medians (target: <= 1.02, i.e. folding leaves
  nothing behind);
* the fold's max relative output error.

Models start from random init (no pretrained weights are needed for
timing or for the fold's exactness). ``--quick`` uses smaller inputs and
fewer timing rounds. The table is printed; ``--json`` writes the figures.
"""
import copy
import functools
import inspect
from typing import Any, Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.registry import MODELS

from mmconvplug.analysis import (
    TensorModeForward,
    count_flops,
    count_parameters,
    default_data_samples,
    format_table,
    interleaved_medians,
)
from mmconvplug.apis import config_scope, init_model, load_config, map_config
from mmconvplug.convs.base import conv_variants
from mmconvplug.fold import fold_model, verify_fold
from mmconvplug.fold.fold_model import preserved_rng_state
from mmconvplug.swap import CONV_SWAP_KEY

#: Stock types that hard-code ``nn.Conv2d`` (no ``conv_cfg``): their convs
#: become the variant through a ``conv_swap`` block instead.
CONV_SWAP_TYPES = frozenset({'SSDVGG'})

#: name -> (scope, stock config under <lib>/.mim/configs, input H W,
#: quick input H W). SSD300's anchors need its 300x300 input.
MODEL_SPECS = {
    'ssd300': ('mmdet', 'ssd/ssd300_coco.py', (300, 300), (300, 300)),
    'mask_rcnn': ('mmdet', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                  (512, 512), (256, 256)),
    'deeplabv3plus': ('mmseg', 'deeplabv3plus/'
                      'deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
                      (512, 512), (256, 256)),
}

def stock_config(name: str) -> Config:
    """The stock mmdet / mmseg config of a benchmark model."""
    scope, relative, _, _ = MODEL_SPECS[name]
    return load_config(f'{scope}::{relative}')


def _takes_conv_cfg(type_name: Any, scope: str) -> bool:
    """True when the registered class (or a base) has a conv_cfg argument."""
    cls = None
    if isinstance(type_name, str):
        with MODELS.switch_scope_and_registry(scope) as registry:
            cls = registry.get(type_name)
    return cls is not None and any(
        'conv_cfg' in inspect.signature(base.__init__).parameters
        for base in getattr(cls, '__mro__', ()) if '__init__' in vars(base))


def variant_config(stock: Config, variant: str,
                   scope: Optional[str] = None) -> Config:
    """The stock config with every conv_cfg-taking part of its model on
    ``conv_cfg=dict(type=variant)`` and every part of
    :data:`CONV_SWAP_TYPES` on ``conv_swap=dict(type=variant)``; types are
    looked up in ``scope`` (default: the config's,
    :func:`~mmconvplug.apis.config_scope`)."""
    if variant not in conv_variants():
        raise ValueError(
            f'--variant {variant!r} is not a registered mmconvplug conv '
            f'variant; choose one of {sorted(conv_variants())}.')
    scope = scope or config_scope(stock)

    def with_variant(node: dict) -> dict:
        if node.get('type') in CONV_SWAP_TYPES:
            node[CONV_SWAP_KEY] = dict(type=variant)
        elif 'conv_cfg' in node or _takes_conv_cfg(node.get('type'), scope):
            node['conv_cfg'] = dict(type=variant)
        return node

    cfg = copy.deepcopy(stock)
    cfg.model = map_config(cfg.model.to_dict(), with_variant)
    return cfg


def benchmark_model(name: str, variant: str, quick: bool,
                    rounds: int) -> Dict[str, Any]:
    """All figures for one model."""
    scope, _, shape, quick_shape = MODEL_SPECS[name]
    height, width = quick_shape if quick else shape
    stock_cfg = stock_config(name)
    with preserved_rng_state():
        torch.manual_seed(0)
        trained = init_model(variant_config(stock_cfg, variant, scope))
        # A fresh variant is often an exact identity re-parameterisation
        # (DOConv's D starts at I): move every weight a little, as training
        # would, so the fold error below is measured on non-trivial weights.
        with torch.no_grad():
            for parameter in trained.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.01)
        folded, report = fold_model(trained, return_report=True)
        stock = init_model(stock_cfg)
    stock.load_state_dict(folded.state_dict(), strict=True)
    inputs = torch.randn(1, 3, height, width,
                         generator=torch.Generator().manual_seed(0))
    samples = default_data_samples(trained, inputs)
    verification = verify_fold(trained, folded, inputs, samples)
    with torch.no_grad():
        seconds = interleaved_medians(
            {name: functools.partial(TensorModeForward(model, samples),
                                     inputs)
             for name, model in (('folded', folded), ('stock', stock))},
            rounds)
    time_folded, time_stock = seconds['folded'], seconds['stock']
    return dict(
        model=name,
        variant=variant,
        input_shape=[1, 3, height, width],
        layers_folded=len(report.folded),
        layers_kept=len(report.kept),
        params_trained=count_parameters(trained),
        params_folded=count_parameters(folded),
        flops_trained=count_flops(trained, inputs, samples),
        flops_folded=count_flops(folded, inputs, samples),
        time_folded_s=time_folded,
        time_stock_s=time_stock,
        time_ratio_folded_vs_stock=time_folded / time_stock,
        max_rel_error=verification.max_rel_error,
    )


def format_results(rows: List[Dict[str, Any]],
                   markdown: bool = False) -> str:
    """The figures as a table (text, or Markdown for the docs)."""
    header = ['model', 'layers folded', 'M params trained > folded',
              'GFLOPs trained > folded', 'ms folded / stock', 'ratio',
              'rel. error']
    cells = [[
        r['model'], r['layers_folded'],
        f'{r["params_trained"] / 1e6:.2f} > {r["params_folded"] / 1e6:.2f}',
        f'{r["flops_trained"] / 1e9:.2f} > {r["flops_folded"] / 1e9:.2f}',
        f'{r["time_folded_s"] * 1e3:.1f} / {r["time_stock_s"] * 1e3:.1f}',
        f'{r["time_ratio_folded_vs_stock"]:.3f}', f'{r["max_rel_error"]:.1e}'
    ] for r in rows]
    return format_table(header, cells, markdown=markdown)
