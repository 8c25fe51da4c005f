"""Before anything is built: does the model predict the dataset's K?

``check_config`` (``tools/train.py``, ``tools/test.py``) calls
:func:`check_keypoint_config`: for every ``KeypointHeatmapHead`` in the
model and every keypoint dataset the run will build, the head's
``num_keypoints``, the dataset metainfo's ``keypoint_names``,
``flip_indices`` and ``keypoint_sigmas`` (the class's ``METAINFO`` updated
by the config's ``metainfo``, as mmengine merges them) and a
``CocoKeypointMetric``'s own ``keypoint_sigmas`` must all have one length.
The annotation file's K is checked when the dataset loads it.
"""
from typing import Any, Iterator, List, Tuple

from mmengine.config import Config
from mmengine.registry import DATASETS

from mmconvplug.utils.config_walk import leaf_datasets, type_name, walk_config

from .keypoint_counts import check_keypoint_counts, metainfo_counts

#: The dataloaders (and their evaluators) each phase builds.
PHASE_LOADERS = {
    'train': (('train_dataloader', None), ('val_dataloader', 'val_evaluator')),
    'val': (('val_dataloader', 'val_evaluator'), ),
    'test': (('test_dataloader', 'test_evaluator'), ),
}
HEAD_TYPE = 'KeypointHeatmapHead'
DEFAULT_NUM_KEYPOINTS = 17  # KeypointHeatmapHead's default


def _short(type_value: Any) -> str:
    return str(type_name(type_value))


def _heads(node: Any, path: str) -> Iterator[Tuple[str, int]]:
    """``(key path, num_keypoints)`` of every keypoint head config."""
    for key_path, value in walk_config(node, path):
        if isinstance(value, dict) and _short(value.get('type')) == HEAD_TYPE:
            yield key_path, int(
                value.get('num_keypoints', DEFAULT_NUM_KEYPOINTS))


def _metainfo(dataset: dict) -> dict:
    """The metainfo the dataset will have (class METAINFO + config's)."""
    cls = dataset.get('type')
    if not isinstance(cls, type):
        cls = DATASETS.get(_short(cls)) if cls is not None else None
    metainfo = dict(getattr(cls, 'METAINFO', None) or {})
    metainfo.update(dataset.get('metainfo') or {})
    return metainfo


def _metric_sigmas(evaluator: Any) -> List[Tuple[str, int]]:
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    return [(f'keypoint_sigmas ({_short(ev.get("type"))} argument)',
             len(ev['keypoint_sigmas'])) for ev in evaluators
            if isinstance(ev, dict) and ev.get('keypoint_sigmas') is not None]


def check_keypoint_config(cfg: Config, phase: str = 'train') -> None:
    """Raise unless model, metainfo and metric agree on K.

    Args:
        cfg: the loaded config.
        phase: ``'train'`` (train and val data), ``'val'`` or ``'test'``.

    Raises:
        KeypointCountError: (a ``ValueError``) naming the head's
            ``num_keypoints`` and the lengths of ``keypoint_names``,
            ``flip_indices`` and ``keypoint_sigmas``.
    """
    heads = list(_heads(cfg.get('model'), 'model'))
    if not heads:
        return
    for loader_key, evaluator_key in PHASE_LOADERS.get(phase, ()):
        loader = cfg.get(loader_key)
        if not isinstance(loader, dict):
            continue
        sigmas = _metric_sigmas(cfg.get(evaluator_key)) if evaluator_key \
            else []
        for path, dataset in leaf_datasets(loader.get('dataset'),
                                            f'{loader_key}.dataset'):
            metainfo = _metainfo(dataset)
            if 'keypoint_names' not in metainfo:
                continue
            for head_path, num_keypoints in heads:
                check_keypoint_counts(
                    f'{path} ({_short(dataset.get("type"))}) and '
                    f'{head_path}',
                    [(f'K ({head_path}.num_keypoints)', num_keypoints)] +
                    list(metainfo_counts(metainfo)) + sigmas)
