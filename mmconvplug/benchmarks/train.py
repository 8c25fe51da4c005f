"""``mmconvplug benchmark train``: what a variant costs to train, whole model.

    mmconvplug benchmark train [--models ssd300 mask_rcnn deeplabv3plus
        mobilenet_ssd] [--variants DOConv RefConv ...] [--repeats N]
        [--threads T] [--cpu-time] [--quick] [--batch N] [--size H W]
        [--json OUT] [--markdown]

For each model, the stock plain model and each variant **computing the same
function**: the variant model is the plain model (random init, seeded) with
the convs that the variant's config places replaced by
``VariantClass.from_conv(plain_conv, **layer.from_conv_kwargs())``, so it
starts from the plain weights, exactly. The loss of the first step is
compared with the plain model's to show it (``step0_rel_diff``).

Every model then runs the same train step on the same fixed batch:
``loss = model(**data, mode='loss')``, backward, ``optimizer.step()``. The
optimizer is SGD with momentum and weight decay at learning rate 0: the
update arithmetic runs in full, but the weights stay the plain ones, so
every timed step of every model computes the same function (the same
proposals and RoI-head work in Mask R-CNN). The RNG is reseeded before each
step so samplers draw alike. Steps are timed interleaved (plain, variant 1,
variant 2, ...; one warm-up step each) and the ratio of medians is
reported, with the peak memory of one step above what was alive before it
(CPU: the resident-set peak on Linux, else torch.profiler's tensor
timeline; CUDA: ``max_memory_allocated``). On a GPU (``--device cuda``, the
default when one is present) the same code runs with CUDA events.

Models (stock configs; the variant placed as its config places it):

* ``ssd300``: mmdet ``ssd/ssd300_coco.py``, 300x300;
* ``mask_rcnn``: mmdet ``mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py``;
* ``deeplabv3plus``: mmseg DeepLabv3+ R50-D8 Cityscapes;
* ``mobilenet_ssd``: our ``condconv/ssd300_mobilenetv1_8xb8-24e_coco.py``
  (plain MobileNetV1 SSD300); CondConv as in the CondConv-MobileNetV1 config
  (8 experts, blocks 6-12).

Other variants are placed by ``conv_cfg`` in every part that takes one
(:func:`mmconvplug.benchmarks.models.variant_config`).
"""
import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from mmconvplug.analysis import (
    count_parameters,
    format_table,
    interleaved_medians,
    peak_memory_bytes,
)
from mmconvplug.analysis.memory import rss_peak_supported
from mmconvplug.apis import init_model, load_config, map_config
from mmconvplug.convs.base import is_conv_variant

from .models import variant_config


@dataclass(frozen=True)
class TrainSpec:
    """One benchmark model.

    Args:
        scope (str): ``'mmdet'`` or ``'mmseg'``.
        config (str): Plain config: ``<scope>::<path>``, ``mmdet``,
            ``mmseg`` or ``mmconvplug`` (our packaged configs).
        batch (int): Images per step.
        size (tuple[int, int]): Input height and width.
        quick (tuple[int, tuple[int, int]]): Batch and size for ``--quick``.
        variants (tuple[str, ...]): Variants measured by default.
        variant_configs (dict): Variant -> its own config (as ``config``);
            other variants are placed by ``conv_cfg``.
    """

    scope: str
    config: str
    batch: int
    size: Tuple[int, int]
    quick: Tuple[int, Tuple[int, int]]
    variants: Tuple[str, ...]
    variant_configs: Dict[str, str] = field(default_factory=dict)


MODEL_SPECS = {
    'ssd300': TrainSpec('mmdet', 'mmdet::ssd/ssd300_coco.py', 4, (300, 300),
                        (1, (300, 300)), ('DOConv', 'RefConv')),
    'mask_rcnn': TrainSpec(
        'mmdet', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 2,
        (512, 512), (1, (256, 256)), ('DOConv', 'RefConv')),
    'deeplabv3plus': TrainSpec(
        'mmseg', 'mmseg::deeplabv3plus/'
        'deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py', 2,
        (384, 384), (2, (128, 128)), ('DOConv', 'RefConv')),
    'mobilenet_ssd': TrainSpec(
        'mmdet', 'mmconvplug::condconv/ssd300_mobilenetv1_8xb8-24e_coco.py',
        8, (300, 300), (2, (300, 300)), ('CondConv', ),
        dict(CondConv='mmconvplug::condconv/'
             'ssd300_mobilenetv1-condconv8_8xb8-24e_coco.py')),
}


def _drop_pretrained(node: dict) -> dict:
    init = node.get('init_cfg')
    inits = init if isinstance(init, list) else [init]
    if any(isinstance(i, dict) and i.get('type') == 'Pretrained'
           for i in inits):
        node['init_cfg'] = None
    if node.get('pretrained') is not None:
        node['pretrained'] = None
    return node


def without_pretrained(node: Any) -> Any:
    """A copy of a model config with every ``Pretrained`` init (and
    ``pretrained=``) removed: random init, nothing downloaded."""
    return map_config(node, _drop_pretrained)


def build_model(cfg: Config, seed: int = 0) -> nn.Module:
    """The config's model (:func:`~mmconvplug.apis.init_model`: built in
    its scope, SyncBN reverted to BN, as the Runner does outside DDP) with
    random weights initialised as the Runner does (``Pretrained`` inits
    dropped), in train mode."""
    cfg = copy.deepcopy(cfg)
    cfg.model = without_pretrained(cfg.model.to_dict())
    torch.manual_seed(seed)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every tensor
    try:
        model = init_model(cfg, init_weights=True)
    finally:
        logger.setLevel(level)
    model.train()
    return model


def variant_from_plain(plain: nn.Module, placed: nn.Module) -> nn.Module:
    """``plain`` with the convs where ``placed`` has variants turned into
    those variants by ``from_conv`` (the plain weights, exactly).

    Args:
        plain (nn.Module): The plain model (left unchanged).
        placed (nn.Module): A model of the variant config: it says where
            the variants go, which class and which hyper-parameters
            (``from_conv_kwargs()``).

    Returns:
        nn.Module: A new model.

    Raises:
        ValueError: ``placed`` has no variant, or a variant where ``plain``
            has no ``nn.Conv2d``.
    """
    model = copy.deepcopy(plain)
    modules = dict(model.named_modules())
    swapped = 0
    for name, layer in placed.named_modules():
        if not is_conv_variant(layer):
            continue
        conv = modules.get(name)
        if type(conv) is not nn.Conv2d:
            raise ValueError(
                f'variant_from_plain: the variant config has a '
                f'{type(layer).__name__} at {name!r} but the plain model has '
                f'{type(conv).__name__}; the two configs must share module '
                'names.')
        parent_name, _, child = name.rpartition('.')
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child,
                type(layer).from_conv(conv, **layer.from_conv_kwargs()))
        swapped += 1
    if not swapped:
        raise ValueError('variant_from_plain: the variant config places no '
                         'conv variant in this model.')
    return model


def fixed_batch(model: nn.Module, scope: str, batch: int,
                size: Tuple[int, int], num_classes: int) -> dict:
    """A seeded batch with ground truth, through the model's preprocessor."""
    height, width = size
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                            generator=generator) for _ in range(batch)]
    meta = dict(img_shape=size, ori_shape=size, pad_shape=size,
                scale_factor=(1.0, 1.0), batch_input_shape=size)
    samples = []
    for _ in range(batch):
        if scope == 'mmdet':
            samples.append(_det_sample(meta, num_classes, generator))
        else:
            samples.append(_seg_sample(meta, num_classes, generator))
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   True)


def _det_sample(meta: dict, num_classes: int,
                generator: torch.Generator) -> Any:
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    height, width = meta['img_shape']
    num = 4
    corner = torch.rand(num, 2, generator=generator) * torch.tensor(
        [width * 0.6, height * 0.6])
    extent = (torch.rand(num, 2, generator=generator) * 0.3 + 0.1) * \
        torch.tensor([width, height])
    boxes = torch.cat([corner, corner + extent], dim=1)
    masks = torch.zeros(num, height, width, dtype=torch.uint8)
    for index, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
        masks[index, y1:y2, x1:x2] = 1
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = InstanceData(
        bboxes=boxes,
        labels=torch.randint(0, num_classes, (num, ), generator=generator),
        masks=BitmapMasks(masks.numpy(), height, width))
    return sample


def _seg_sample(meta: dict, num_classes: int,
                generator: torch.Generator) -> Any:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    height, width = meta['img_shape']
    sample = SegDataSample(metainfo=meta)
    sample.gt_sem_seg = PixelData(data=torch.randint(
        0, num_classes, (1, height, width), generator=generator))
    return sample


def _num_classes(cfg: Config) -> int:
    model = cfg.model
    for head in ('bbox_head', 'decode_head'):
        if head in model:
            return model[head].num_classes
    return model.roi_head.bbox_head.num_classes


def make_train_step(model: nn.Module, data: dict) -> Callable[[], float]:
    """One train step on ``data``; returns the loss as a float."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9,
                                weight_decay=1e-4)
    model.train()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def benchmark_model(name: str,
                    variants: Sequence[str],
                    quick: bool,
                    repeats: int,
                    clock: Callable[[], float],
                    device: str,
                    batch: Optional[int] = None,
                    size: Optional[Tuple[int, int]] = None) -> List[dict]:
    """Rows (one per variant) for one model; ``batch`` / ``size`` override
    the spec's (or its quick) batch and input size."""
    spec = MODEL_SPECS[name]
    default_batch, default_size = spec.quick if quick else (spec.batch,
                                                            spec.size)
    batch = batch or default_batch
    size = tuple(size) if size else default_size
    plain_cfg = load_config(spec.config)
    if 'size' in plain_cfg.model.get('data_preprocessor', {}):
        # mmseg pads every batch to the config's crop size: pad to ours.
        plain_cfg.model.data_preprocessor['size'] = size
    plain = build_model(plain_cfg).to(device)
    models = {'plain': plain}
    for variant in variants:
        if variant in spec.variant_configs:
            cfg = load_config(spec.variant_configs[variant])
        else:
            cfg = variant_config(plain_cfg, variant, spec.scope)
        placed = build_model(cfg)
        models[variant] = variant_from_plain(plain, placed).to(device)
        del placed
    data = fixed_batch(plain, spec.scope, batch, size,
                       _num_classes(plain_cfg))
    steps = {key: make_train_step(model, data)
             for key, model in models.items()}

    def reseed() -> None:
        torch.manual_seed(0)

    cuda = device.startswith('cuda')
    first_loss = {}
    for key, step in steps.items():  # the warm-up step, checked
        reseed()
        first_loss[key] = step()
    seconds = interleaved_medians(steps, repeats, clock, warmup=0,
                                  cuda=cuda, before_each=reseed)
    method = 'rss' if rss_peak_supported() else 'timeline'
    peaks = {}
    for key, step in steps.items():
        reseed()
        peaks[key] = peak_memory_bytes(step, cuda=cuda, method=method)
    rows = []
    for variant in variants:
        rows.append(dict(
            model=name, variant=variant, batch=batch, input_size=list(size),
            device=device,
            params=count_parameters(models[variant]),
            params_plain=count_parameters(plain),
            step0_loss=first_loss[variant],
            step0_loss_plain=first_loss['plain'],
            step0_rel_diff=abs(first_loss[variant] - first_loss['plain']) /
            max(abs(first_loss['plain']), 1e-12),
            train_s=seconds[variant], train_s_plain=seconds['plain'],
            train_ratio=seconds[variant] / seconds['plain'],
            peak_mb=peaks[variant] / 2**20,
            peak_mb_plain=peaks['plain'] / 2**20,
            peak_ratio=(peaks[variant] / peaks['plain']
                        if peaks['plain'] else None)))
    return rows


def format_results(rows: Sequence[dict], markdown: bool = False) -> str:
    """The ratios as a table (text, or Markdown for the docs)."""
    header = ['model (batch x input)', 'variant', 'train step vs plain',
              's/step plain', 'peak MB (vs plain)', 'step-0 loss rel. diff']
    cells = [[
        f'{r["model"]} ({r["batch"]} x {r["input_size"][0]}x'
        f'{r["input_size"][1]})', r['variant'], f'{r["train_ratio"]:.2f}x',
        f'{r["train_s_plain"]:.2f}',
        f'{r["peak_mb"]:.0f} ({r["peak_ratio"]:.2f}x)'
        if r['peak_ratio'] else f'{r["peak_mb"]:.0f}',
        f'{r["step0_rel_diff"]:.1e}'
    ] for r in rows]
    return format_table(header, cells, markdown=markdown)
