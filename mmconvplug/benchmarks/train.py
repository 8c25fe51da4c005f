"""``mmconvplug benchmark train``: what a variant costs to train, whole model.

    mmconvplug benchmark train [--models ssd300 mask_rcnn deeplabv3plus
        mobilenet_ssd] [--variants DOConv RefConv ...] [--repeats N]
        [--threads T] [--cpu-time] [--quick] [--batch N|config] [--size H W]
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
variant 2, ..., in a shuffled order each round; one warm-up step each)
and the median of the per-round ratios is reported with their
interquartile range, with the peak memory of one step above what was alive
before it (CPU: the resident-set peak on Linux, else torch.profiler's
tensor timeline; CUDA: ``max_memory_allocated``). On a GPU (``--device
cuda``, the default when one is present) the same code runs with CUDA
events.

Where a variant's cost lies, from the same rounds: each step's phases
(forward + loss, backward, optimizer step) are timed too, and the table
gives the variant's extra milliseconds in each (medians); for DO-Conv and
RefConv, every layer's kernel composition (forward + backward) is also
timed as one call per round (warm) and given in ms and as a share of the
plain step: the composition's part of the ratio, measured far more
precisely than a whole step's few-percent differences.

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
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from mmconvplug.analysis import (
    count_parameters,
    format_table,
    interleaved_samples,
    peak_memory_bytes,
    ratio_spread,
    spread,
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


def make_train_step(model: nn.Module, data: dict,
                    compile_cfg: Optional[dict] = None,
                    phases: Optional[List[Tuple[float, float, float]]] = None,
                    cuda: bool = False) -> Callable[[], float]:
    """One train step on ``data``; returns the loss as a float.

    Args:
        model (nn.Module): The model (put in train mode).
        data (dict): ``model(**data, mode='loss')``'s arguments.
        compile_cfg (dict, optional): ``torch.compile`` options for the
            forward and loss (what mmengine's ``compile=dict(...)`` passes
            to ``torch.compile`` for ``train_step``); backward and the
            optimizer step run eagerly, as there. Defaults to None (eager).
        phases (list, optional): Where each step appends its phases'
            seconds, ``(zero grad + forward + loss, backward, optimizer
            step)`` (``time.perf_counter``; CUDA synchronised first).
            Defaults to None (not recorded).
        cuda (bool): Synchronise CUDA around the phases. Defaults to False.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9,
                                weight_decay=1e-4)
    model.train()

    def loss_of() -> torch.Tensor:
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        return loss

    forward = loss_of if compile_cfg is None else torch.compile(
        loss_of, **compile_cfg)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = forward()
        loss.backward()
        optimizer.step()
        return loss.item()

    if phases is None:
        return step
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timed_step() -> float:
        sync()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = forward()
        sync()
        forward_end = time.perf_counter()
        loss.backward()
        sync()
        backward_end = time.perf_counter()
        optimizer.step()
        sync()
        phases.append((forward_end - start, backward_end - forward_end,
                       time.perf_counter() - backward_end))
        return loss.item()

    return timed_step


def composition_call(model: nn.Module) -> Optional[Callable[[], None]]:
    """Every kernel composition of ``model`` (the variant layers with a
    ``compose_kernel``: DO-Conv, RefConv), forward + backward into fresh
    gradients, as one call: the part of a train step that composes kernels.
    A frozen layer (e.g. mmdet's ``frozen_stages``) composes forward only,
    as in its train step. None when the model composes none."""
    layers = [module for module in model.modules()
              if is_conv_variant(module) and hasattr(module, 'compose_kernel')
              and getattr(module, 'weight', None) is not None]
    if not layers:
        return None
    grads = []
    for layer in layers:
        kernel = layer.compose_kernel()
        grads.append(torch.randn_like(kernel.detach())
                     if kernel.requires_grad else None)

    def compose_all() -> None:
        for layer, grad in zip(layers, grads):
            for param in layer.parameters():
                param.grad = None
            kernel = layer.compose_kernel()
            if grad is not None:
                kernel.backward(grad)

    return compose_all


#: The phases of a train step, as recorded by :func:`make_train_step`.
PHASES = ('forward', 'backward', 'optimizer')

#: ``batch=CONFIG_BATCH``: the config's own ``train_dataloader.batch_size``
#: (the per-GPU batch the published schedule trains with).
CONFIG_BATCH = 'config'


def benchmark_model(name: str,
                    variants: Sequence[str],
                    quick: bool,
                    repeats: int,
                    clock: Callable[[], float],
                    device: str,
                    batch: Optional[Union[int, str]] = None,
                    size: Optional[Tuple[int, int]] = None,
                    compile_cfg: Optional[dict] = None) -> List[dict]:
    """Rows (one per variant) for one model; ``batch`` / ``size`` override
    the spec's (or its quick) batch and input size (``batch=CONFIG_BATCH``:
    the plain config's ``train_dataloader.batch_size``). With ``compile_cfg``
    (``torch.compile`` options) every model, plain included, also runs
    compiled, in the same interleaved rounds: the rows add the compiled
    step time, its ratio to the same model's eager step, the first
    compiled step's time (the compilation) and its loss against eager."""
    spec = MODEL_SPECS[name]
    default_batch, default_size = spec.quick if quick else (spec.batch,
                                                            spec.size)
    size = tuple(size) if size else default_size
    plain_cfg = load_config(spec.config)
    if batch == CONFIG_BATCH:
        batch = plain_cfg.train_dataloader.batch_size
    batch = batch or default_batch
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
    cuda = device.startswith('cuda')
    phases = {key: [] for key in models}
    steps = {key: make_train_step(model, data, phases=phases[key], cuda=cuda)
             for key, model in models.items()}
    if compile_cfg is not None:
        torch._dynamo.reset()
        for key, model in models.items():
            steps[key + ':compiled'] = make_train_step(model, data,
                                                       compile_cfg)

    def reseed() -> None:
        torch.manual_seed(0)

    first_loss, first_s = {}, {}
    for key, step in steps.items():  # the warm-up step, checked
        reseed()
        start = clock()
        first_loss[key] = step()
        first_s[key] = clock() - start
    # The kernel compositions of each variant model alone, in the same
    # rounds, timed warm (see :func:`interleaved_samples`).
    calls = dict(steps)
    for key, model in models.items():
        compose = composition_call(model) if key != 'plain' else None
        if compose is not None:
            compose()  # its warm-up
            calls[key + ':compose'] = compose
    for records in phases.values():
        records.clear()  # the warm-up steps'
    samples = interleaved_samples(
        calls, repeats, clock, warmup=0, cuda=cuda, before_each=reseed,
        warm=[key for key in calls if key.endswith(':compose')])
    phase_s = {key: [statistics.median(step[i] for step in records)
                     for i in range(3)]
               for key, records in phases.items()}
    seconds = {key: spread(values).median for key, values in samples.items()}
    method = 'rss' if rss_peak_supported() else 'timeline'
    peaks = {}
    for key, step in steps.items():
        if key.endswith(':compiled'):
            continue
        reseed()
        peaks[key] = peak_memory_bytes(step, cuda=cuda, method=method)
    rows = []
    for variant in variants:
        ratio = ratio_spread(samples[variant], samples['plain'])
        row = dict(
            model=name, variant=variant, batch=batch, input_size=list(size),
            device=device,
            params=count_parameters(models[variant]),
            params_plain=count_parameters(plain),
            step0_loss=first_loss[variant],
            step0_loss_plain=first_loss['plain'],
            step0_rel_diff=_relative(first_loss[variant],
                                     first_loss['plain']),
            train_s=seconds[variant], train_s_plain=seconds['plain'],
            train_ratio=ratio.median, train_ratio_q1=ratio.q1,
            train_ratio_q3=ratio.q3, repeats=repeats,
            peak_mb=peaks[variant] / 2**20,
            peak_mb_plain=peaks['plain'] / 2**20,
            peak_ratio=(peaks[variant] / peaks['plain']
                        if peaks['plain'] else None),
            phase_s=dict(zip(PHASES, phase_s[variant])),
            phase_s_plain=dict(zip(PHASES, phase_s['plain'])))
        if variant + ':compose' in seconds:
            row.update(compose_s=seconds[variant + ':compose'],
                       compose_share=(seconds[variant + ':compose'] /
                                      seconds['plain']))
        if compile_cfg is not None:
            row['compile'] = dict(compile_cfg)
            for key, prefix in ((variant, ''), ('plain', 'plain_')):
                compiled = key + ':compiled'
                speedup = ratio_spread(samples[compiled], samples[key])
                row.update({
                    f'{prefix}compiled_s': seconds[compiled],
                    f'{prefix}compiled_vs_eager': speedup.median,
                    f'{prefix}compiled_vs_eager_q1': speedup.q1,
                    f'{prefix}compiled_vs_eager_q3': speedup.q3,
                    f'{prefix}compile_first_step_s': first_s[compiled],
                    f'{prefix}compiled_step0_rel_diff': _relative(
                        first_loss[compiled], first_loss[key]),
                })
            compiled_ratio = ratio_spread(samples[variant + ':compiled'],
                                          samples['plain:compiled'])
            row.update(compiled_train_ratio=compiled_ratio.median,
                       compiled_train_ratio_q1=compiled_ratio.q1,
                       compiled_train_ratio_q3=compiled_ratio.q3)
        rows.append(row)
    return rows


def _relative(value: float, reference: float) -> float:
    return abs(value - reference) / max(abs(reference), 1e-12)


def format_results(rows: Sequence[dict], markdown: bool = False) -> str:
    """The ratios as a table (text, or Markdown for the docs): the median
    of the per-round ratios, their interquartile range in brackets; with
    ``--compile``, the compiled variant against the compiled plain model
    and the compiled step against the same model's eager one."""
    compiled = any('compiled_s' in r for r in rows)
    header = ['model (batch x input)', 'variant', 'train step vs plain (IQR)',
              's/step plain', 'extra ms: fwd / bwd / opt',
              'compose ms (share)', 'peak MB (vs plain)',
              'step-0 loss rel. diff']
    if compiled:
        header += ['compiled vs compiled plain (IQR)',
                   'compiled / eager: variant, plain',
                   'compile s (first step)',
                   'compiled loss rel. diff']

    def iqr(r, key):
        return (f'{r[key]:.2f}x ({r[key + "_q1"]:.2f}-'
                f'{r[key + "_q3"]:.2f})')

    cells = []
    for r in rows:
        cell = [
            f'{r["model"]} ({r["batch"]} x {r["input_size"][0]}x'
            f'{r["input_size"][1]})', r['variant'], iqr(r, 'train_ratio'),
            f'{r["train_s_plain"]:.2f}',
            ' / '.join(f'{1e3 * (r["phase_s"][p] - r["phase_s_plain"][p]):+.0f}'
                       for p in PHASES),
            f'{1e3 * r["compose_s"]:.1f} ({100 * r["compose_share"]:.1f}%)'
            if r.get('compose_s') is not None else 'n/a',
            f'{r["peak_mb"]:.0f} ({r["peak_ratio"]:.2f}x)'
            if r['peak_ratio'] else f'{r["peak_mb"]:.0f}',
            f'{r["step0_rel_diff"]:.1e}'
        ]
        if compiled:
            cell += [
                iqr(r, 'compiled_train_ratio'),
                f'{r["compiled_vs_eager"]:.2f}x, '
                f'{r["plain_compiled_vs_eager"]:.2f}x',
                f'{r["compile_first_step_s"]:.1f}',
                f'{r["compiled_step0_rel_diff"]:.1e}'
            ]
        cells.append(cell)
    return format_table(header, cells, markdown=markdown)
