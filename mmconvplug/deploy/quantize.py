"""Static post-training INT8 quantization of an exported graph, and the
folded kernels' weight ranges that decide how well it goes.

:func:`quantize_int8` runs onnxruntime's static quantization
(``onnxruntime.quantization.quantize_static``): QDQ format
(QuantizeLinear / DequantizeLinear pairs around the float ops, what
onnxruntime, OpenVINO and TensorRT read), signed INT8 weights per output
channel and signed INT8 activations per tensor (S8S8, onnxruntime's
recommended default for QDQ on CPU), MinMax ranges calibrated on
preprocessed training images (:func:`calibration_batches`), after
onnxruntime's model pre-processing (``quant_pre_process``: shape inference
and graph optimisation). See onnxruntime's "Quantize ONNX models" guide.

A re-parameterised kernel can spread its channels' ranges far more than a
plainly trained one (RepVGG issues #46, #59; YOLOv6 #265), which per-tensor
scales turn into lost precision. :func:`weight_range_table` gives, for
every conv of a (folded) model, the range and the per-output-channel
spread (largest channel max|w| over the median channel's);
:func:`compare_weight_ranges` lays two models side by side.
"""
import copy
import os
import os.path as osp
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from mmconvplug.analysis.tables import format_table

from .runtimes import require


@dataclass
class CalibrationSet:
    """Preprocessed images to calibrate with.

    Args:
        batches (list[np.ndarray]): ``(1, C, H, W)`` float32 arrays, as the
            exported graph takes them (normalised, padded).
        requested (int): how many images were asked for.
    """

    batches: List[np.ndarray]
    requested: int

    @property
    def note(self) -> str:
        """How many images calibrate, and why fewer than asked."""
        used = len(self.batches)
        if used < self.requested:
            return (f'calibrated on {used} training images (the training '
                    f'set has {used}; {self.requested} were asked for)')
        return f'calibrated on {used} training images'


def _set_pipeline(dataset_cfg: dict, pipeline: list) -> None:
    """Give every leaf dataset of a (wrapped) dataset config ``pipeline``."""
    if 'datasets' in dataset_cfg:
        for child in dataset_cfg['datasets']:
            _set_pipeline(child, pipeline)
    elif 'dataset' in dataset_cfg:
        _set_pipeline(dataset_cfg['dataset'], pipeline)
    else:
        dataset_cfg['pipeline'] = copy.deepcopy(pipeline)


def _test_pipeline(cfg: Config) -> list:
    dataset = cfg.test_dataloader.dataset
    while 'pipeline' not in dataset:
        dataset = dataset.get('dataset') or dataset['datasets'][0]
    return list(dataset['pipeline'])


def calibration_batches(cfg: Config, model: nn.Module,
                        num_images: int = 32) -> CalibrationSet:
    """The first ``num_images`` training images through the TEST pipeline
    and ``model``'s data preprocessor (no augmentation: the inputs the
    deployed graph sees).

    Args:
        cfg (Config): the config (its ``train_dataloader`` dataset and its
            test pipeline).
        model (nn.Module): the model (its ``data_preprocessor``).
        num_images (int): images to take. Defaults to 32.

    Returns:
        CalibrationSet: one ``(1, C, H, W)`` array per image.

    Raises:
        ValueError: ``num_images`` < 1.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmconvplug.apis.config import config_scope
    if num_images < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}.')
    init_default_scope(config_scope(cfg))
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    _set_pipeline(loader_cfg['dataset'], _test_pipeline(cfg))
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False))
    loader_cfg.pop('batch_sampler', None)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = []
    with torch.no_grad():
        for data in loader:
            inputs = model.data_preprocessor(data, False)['inputs']
            batches.append(inputs.to('cpu', torch.float32).numpy())
            if len(batches) == num_images:
                break
    return CalibrationSet(batches, num_images)


class _Reader:
    """onnxruntime's ``CalibrationDataReader`` protocol over arrays."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]):
        self._feeds = iter([{input_name: b} for b in batches])

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._feeds, None)

    def rewind(self) -> None:  # not needed by MinMax; part of the protocol
        pass


def quantize_int8(fp32_model: str, out: str,
                  batches: Sequence[np.ndarray],
                  per_channel: bool = True,
                  overwrite: bool = False) -> str:
    """Static INT8 post-training quantization of a one-input ONNX graph.

    Args:
        fp32_model (str): the float ``.onnx`` file (e.g. ``OUT.onnx``).
        out (str): the INT8 ``.onnx`` file to write (atomically).
        batches (Sequence[np.ndarray]): calibration inputs
            (:func:`calibration_batches`).
        per_channel (bool): per-output-channel weight scales. Defaults to
            True.
        overwrite (bool): replace an existing ``out``. Defaults to False.

    Returns:
        str: ``out``.

    Raises:
        DeployDependencyError: onnxruntime is not installed.
        FileNotFoundError: ``fp32_model`` does not exist.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        ValueError: no calibration batches, or the graph has more than one
            input (a two-stage RoI graph: its inputs are features and RoIs).
    """
    require('onnxruntime')
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .runtimes import OnnxRuntimeSession
    if not osp.isfile(fp32_model):
        raise FileNotFoundError(f'No ONNX model at {fp32_model!r}.')
    if osp.lexists(out) and not overwrite:
        raise FileExistsError(
            f'Refusing to write {out!r}: the file already exists. Choose '
            'another path or delete the file first.')
    if not batches:
        raise ValueError('quantize_int8 needs at least one calibration '
                         'batch.')
    inputs = OnnxRuntimeSession(fp32_model).input_names
    if len(inputs) != 1:
        raise ValueError(
            f'{fp32_model!r} has {len(inputs)} inputs ({", ".join(inputs)}):'
            ' INT8 calibration here feeds images to a one-input graph (a '
            'single-stage detector or segmentor). Two-stage RoI graphs are '
            'not quantized.')
    directory = osp.dirname(osp.abspath(out))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quant_pre_process(fp32_model, prepared)
        written = osp.join(tmp, 'int8.onnx')
        quantize_static(
            prepared, written, _Reader(inputs[0], batches),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax)
        if osp.lexists(out) and not overwrite:  # appeared meanwhile
            raise FileExistsError(f'Refusing to write {out!r}: the file '
                                  'already exists.')
        os.replace(written, out)
    return out


@dataclass
class WeightRange:
    """One conv kernel's range (see :func:`weight_range_table`)."""

    name: str
    shape: Tuple[int, ...]
    min: float
    max: float
    channel_absmax_min: float
    channel_absmax_median: float
    channel_absmax_max: float

    @property
    def spread(self) -> float:
        """Largest channel max|w| over the median channel's: how much
        coarser a per-tensor INT8 step is than the median channel's."""
        return self.channel_absmax_max / max(self.channel_absmax_median,
                                             1e-12)


def weight_range_table(model: nn.Module) -> List[WeightRange]:
    """The range of every ``nn.Conv2d`` kernel of ``model`` (fold it first:
    the deployed kernels), per output channel.

    Args:
        model (nn.Module): the model.

    Returns:
        list[WeightRange]: one per conv, in module order.
    """
    rows = []
    for name, module in model.named_modules():
        if type(module) is not nn.Conv2d:
            continue
        weight = module.weight.detach().double()
        absmax = weight.abs().flatten(1).amax(dim=1)
        rows.append(WeightRange(
            name, tuple(weight.shape), float(weight.min()),
            float(weight.max()), float(absmax.min()),
            float(absmax.median()), float(absmax.max())))
    return rows


def compare_weight_ranges(reference: nn.Module, model: nn.Module,
                          names: Tuple[str, str] = ('plain', 'variant'),
                          markdown: bool = False) -> str:
    """Two models' conv ranges side by side, joined by layer name.

    Args:
        reference (nn.Module): e.g. the plain model trained with the same
            recipe.
        model (nn.Module): e.g. the folded DO-Conv model.
        names (tuple[str, str]): the two columns' names.
        markdown (bool): a Markdown table. Defaults to False.

    Returns:
        str: the table (layer, shape, each model's max|w| and spread).
    """
    ours = {row.name: row for row in weight_range_table(model)}
    rows = []
    for ref in weight_range_table(reference):
        row = ours.get(ref.name)
        if row is None:
            continue
        rows.append([
            ref.name, 'x'.join(map(str, ref.shape)),
            f'{max(-ref.min, ref.max):.3g}', f'{ref.spread:.2f}',
            f'{max(-row.min, row.max):.3g}', f'{row.spread:.2f}'
        ])
    header = ['layer', 'shape', f'{names[0]} max abs(w)',
              f'{names[0]} spread', f'{names[1]} max abs(w)',
              f'{names[1]} spread']
    return format_table(header, rows, markdown=markdown)
