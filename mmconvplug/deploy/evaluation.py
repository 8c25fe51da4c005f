"""The config's metric through the exported graphs, beside PyTorch's.

:func:`evaluate_backends` runs the config's test dataloader once; every
batch goes through each model (the eager PyTorch model and the deployed
ones, :func:`load_deployed_model`), each with its own copy of the config's
test evaluator (the stock mmdet / mmseg metrics), and the per-image
predictions of every deployed model are compared with PyTorch's as they
come (:class:`Agreement`). This is ultralytics' benchmark mode for the
OpenMMLab stack: the deployed model's accuracy, not only close outputs.
"""
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import EVALUATOR, init_default_scope
from mmengine.runner import Runner
from torch import nn

from mmconvplug.apis import init_model
from mmconvplug.apis.config import config_scope
from mmconvplug.utils import atomic_save

from .backend_model import attach_graphs
from .runtimes import open_session

#: Name of the eager model's column.
PYTORCH = 'pytorch'


def read_manifest(manifest: str) -> dict:
    """The manifest :func:`~.model_export.export_model_onnx` wrote, with
    each graph's ``file`` made absolute.

    Raises:
        FileNotFoundError: the manifest or a graph file is missing.
        ValueError: the file is not an mmconvplug deploy manifest.
    """
    import os.path as osp
    with open(manifest) as f:
        data = json.load(f)
    if not isinstance(data, dict) or 'graphs' not in data or \
            'family' not in data:
        raise ValueError(f'{manifest!r} is not an mmconvplug deploy '
                         'manifest (OUT.deploy.json, written by `mmconvplug '
                         'export`).')
    root = osp.dirname(osp.abspath(manifest))
    for graph in data['graphs'].values():
        graph['file'] = osp.join(root, graph['file'])
        if not osp.isfile(graph['file']):
            raise FileNotFoundError(
                f'{graph["file"]!r}, a graph of {manifest!r}, is missing.')
    return data


def load_deployed_model(cfg: Config, manifest: str,
                        backend: str = 'onnxruntime',
                        num_threads: Optional[int] = None) -> nn.Module:
    """``cfg``'s model, its learned layers replaced by the exported graphs
    of ``manifest`` run in ``backend`` (:func:`~.backend_model.
    attach_graphs`).

    Args:
        cfg (Config): the exported model's config (a training config or its
            deploy config: only the post-processing is used).
        manifest (str): ``OUT.deploy.json``.
        backend (str): the runtime (:data:`~.runtimes.BACKENDS`). Defaults
            to ``'onnxruntime'``.
        num_threads (int, optional): the runtime's intra-op threads.

    Returns:
        nn.Module: the model, ready for ``test_step``.
    """
    data = read_manifest(manifest)
    host = init_model(cfg, None, init_weights=False)
    sessions = {name: open_session(graph['file'], backend, num_threads)
                for name, graph in data['graphs'].items()}
    structures = {name: graph['structure']
                  for name, graph in data['graphs'].items()}
    return attach_graphs(host, data['family'], sessions, structures)


@dataclass
class Agreement:
    """Per-image predictions of a deployed model against PyTorch's.

    Detections are compared in order (both sides sort by score); an image
    whose detections differ in number or labels counts in
    ``images_differing`` and is left out of the maxima.

    Args:
        num_images (int): images compared.
        images_differing (int): images with another number of detections or
            other labels.
        max_box_error (float): largest ``|box - box_ref|``, input pixels of
            the original image.
        max_score_error (float): largest ``|score - score_ref|``.
        mask_pixel_disagreement (float): fraction of mask pixels that
            differ (instance masks), over the compared masks.
        max_keypoint_error (float): largest ``|keypoint - keypoint_ref|``,
            pixels.
        label_map_disagreement (float): fraction of segmentation pixels
            with another class.
    """

    num_images: int = 0
    images_differing: int = 0
    max_box_error: float = 0.0
    max_score_error: float = 0.0
    mask_pixel_disagreement: float = 0.0
    max_keypoint_error: float = 0.0
    label_map_disagreement: float = 0.0
    _mask_pixels: int = field(default=0, repr=False)
    _mask_differ: int = field(default=0, repr=False)
    _seg_pixels: int = field(default=0, repr=False)
    _seg_differ: int = field(default=0, repr=False)

    def add(self, reference: Any, other: Any) -> None:
        """Compare one image's data samples."""
        self.num_images += 1
        if 'pred_sem_seg' in reference:
            ref = reference.pred_sem_seg.data
            got = other.pred_sem_seg.data
            self._seg_pixels += ref.numel()
            self._seg_differ += int((ref != got).sum())
            self.label_map_disagreement = self._seg_differ / self._seg_pixels
            return
        ref, got = reference.pred_instances, other.pred_instances
        if len(ref) != len(got) or not torch.equal(ref.labels, got.labels):
            self.images_differing += 1
            return
        if len(ref) == 0:
            return
        self.max_box_error = max(self.max_box_error, float(
            (ref.bboxes - got.bboxes).abs().max()))
        self.max_score_error = max(self.max_score_error, float(
            (ref.scores - got.scores).abs().max()))
        if 'masks' in ref:
            self._mask_pixels += ref.masks.numel()
            self._mask_differ += int((ref.masks != got.masks).sum())
            self.mask_pixel_disagreement = \
                self._mask_differ / max(1, self._mask_pixels)
        if 'keypoints' in ref:
            self.max_keypoint_error = max(self.max_keypoint_error, float(
                (ref.keypoints - got.keypoints).abs().max()))

    def as_dict(self) -> Dict[str, float]:
        return {k: v for k, v in asdict(self).items()
                if not k.startswith('_')}


@dataclass
class BackendRun:
    """One model's pass over the test set."""

    backend: str
    metrics: Dict[str, float]
    seconds_per_image: float
    agreement: Optional[Agreement] = None


@dataclass
class EvaluationReport:
    """Every model's metrics and agreement with PyTorch."""

    runs: List[BackendRun]

    def lines(self) -> List[str]:
        """One line per backend: its metrics (and agreement)."""
        out = []
        for run in self.runs:
            metrics = ', '.join(f'{k}: {v:.4f}'
                                for k, v in sorted(run.metrics.items()))
            line = (f'{run.backend:<12} {metrics} '
                    f'({run.seconds_per_image * 1000:.1f} ms/image)')
            if run.agreement is not None:
                a = run.agreement
                line += (f'; vs pytorch: {a.images_differing}/'
                         f'{a.num_images} images differ')
            out.append(line)
        return out

    def as_dict(self) -> dict:
        return {
            'backends': {
                run.backend: dict(
                    metrics=run.metrics,
                    seconds_per_image=run.seconds_per_image,
                    agreement=(run.agreement.as_dict()
                               if run.agreement else None))
                for run in self.runs
            }
        }

    def save_json(self, path: str, **extra: Any) -> None:
        """Write :meth:`as_dict` (plus ``extra`` keys) to ``path``."""
        data = dict(extra, **self.as_dict())
        atomic_save(json.dumps(data, indent=1).encode(), path,
                    overwrite=True, save_fn=lambda b, file: file.write(b))


def _build_evaluator(cfg: Config) -> Evaluator:
    evaluator = copy.deepcopy(cfg.test_evaluator)
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator.setdefault('type', 'Evaluator')
        return EVALUATOR.build(evaluator)
    return Evaluator(evaluator)


def evaluate_backends(cfg: Config, models: Dict[str, nn.Module],
                      max_images: Optional[int] = None) -> EvaluationReport:
    """Run ``cfg``'s test dataloader once through every model.

    Args:
        cfg (Config): the config (its ``test_dataloader`` and
            ``test_evaluator``).
        models (dict[str, nn.Module]): name -> model; the first is the
            reference the others' predictions are compared with (e.g.
            ``{'pytorch': folded, 'onnxruntime': deployed}``).
        max_images (int, optional): stop after this many images (the
            metric then covers them only; for quick looks). Defaults to
            None (the whole test set).

    Returns:
        EvaluationReport: metrics, time per image and agreement.
    """
    init_default_scope(config_scope(cfg))
    loader = Runner.build_dataloader(copy.deepcopy(cfg.test_dataloader),
                                     seed=0)
    names = list(models)
    evaluators = {name: _build_evaluator(cfg) for name in names}
    for evaluator in evaluators.values():
        evaluator.dataset_meta = loader.dataset.metainfo
    agreements = {name: Agreement() for name in names[1:]}
    seconds = {name: 0.0 for name in names}
    seen = 0
    for model in models.values():
        model.eval()
    for batch in loader:
        outputs = {}
        for name in names:
            data = copy.deepcopy(batch)
            start = time.perf_counter()
            with torch.no_grad():
                outputs[name] = models[name].test_step(data)
            seconds[name] += time.perf_counter() - start
            evaluators[name].process(data_samples=outputs[name],
                                     data_batch=data)
        for name in names[1:]:
            for ref, got in zip(outputs[names[0]], outputs[name]):
                agreements[name].add(ref, got)
        seen += len(outputs[names[0]])
        if max_images is not None and seen >= max_images:
            break
    runs = []
    for name in names:
        metrics = evaluators[name].evaluate(seen)
        runs.append(BackendRun(
            name, {k: float(v) for k, v in metrics.items()},
            seconds[name] / max(1, seen), agreements.get(name)))
    return EvaluationReport(runs)
