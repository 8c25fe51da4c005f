"""``CocoKeypointMetric``: COCO keypoint AP (OKS) next to mmdet's box AP.

Builds on mmdet's ``CocoMetric``: box (and mask) evaluation, ``format_only``
and ``outfile_prefix`` behave exactly as there; the keypoint results are
written to ``{outfile_prefix}.keypoints.json`` in the COCO result format
(``[x1, y1, s1, ...]`` with ``s`` the keypoint score, the instance ``score``
its box score) and evaluated with pycocotools' ``iouType='keypoints'`` and
the dataset's OKS sigmas (COCO's 17 by default), any K: predictions
``(N, K, 2)``, ``keypoint_names``, ``flip_indices``, ``keypoint_sigmas`` and
the annotation file must agree on K, else a ``KeypointCountError`` names all
of them (pycocotools needs ``len(kpt_oks_sigmas) == K``).

Published files are evaluated as they are: annotations of ``ann_file``
without ``area`` or ``num_keypoints`` (CrowdPose, AIC) get them by the rule
the dataset uses (:mod:`mmconvplug.keypoint.coco_style`) before pycocotools
reads them; present fields are kept.
"""
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmengine.fileio import dump, load
from mmengine.logging import MMLogger

from mmconvplug.registry import METRICS

from .coco_person_meta import COCO_PERSON_KEYPOINT_SIGMAS
from .coco_style import complete_annotation
from .dataset import KEYPOINT_PIXEL_CENTRE_OFFSET
from .keypoint_counts import check_keypoint_counts, metainfo_counts

# Names of COCOeval.stats for iouType='keypoints' (no "small" area range).
KEYPOINT_STAT_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_m', 'mAP_l', 'AR',
                       'AR_50', 'AR_75', 'AR_m', 'AR_l')


@METRICS.register_module()
class CocoKeypointMetric(CocoMetric):
    """COCO metric that also scores ``pred_instances.keypoints``.

    Args:
        metric: any of mmdet's ``CocoMetric`` metrics plus ``'keypoints'``.
            Defaults to ``['bbox', 'keypoints']``.
        keypoint_sigmas: OKS sigma per keypoint; None takes the dataset's
            ``keypoint_sigmas`` metainfo, else COCO's 17.
        max_keypoint_dets: detections per image the OKS evaluation keeps
            (COCO: 20).
        keypoint_metric_items: which keypoint stats to report, from
            ``KEYPOINT_STAT_NAMES``. Default: the five AP numbers.
        **kwargs: ``CocoMetric`` arguments (``ann_file``, ``format_only``,
            ``outfile_prefix`` ...).
    """

    def __init__(self,
                 metric: Union[str, List[str]] = ('bbox', 'keypoints'),
                 keypoint_sigmas: Optional[Sequence[float]] = None,
                 max_keypoint_dets: int = 20,
                 keypoint_metric_items: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        metrics = [metric] if isinstance(metric, str) else list(metric)
        self.evaluate_keypoints = 'keypoints' in metrics
        box_metrics = [m for m in metrics if m != 'keypoints']
        super().__init__(metric=box_metrics, **kwargs)
        if max_keypoint_dets < 1:
            raise ValueError(
                'CocoKeypointMetric: max_keypoint_dets must be >= 1, got '
                f'{max_keypoint_dets} (COCO uses 20).')
        items = list(keypoint_metric_items or KEYPOINT_STAT_NAMES[:5])
        unknown = [item for item in items if item not in KEYPOINT_STAT_NAMES]
        if unknown:
            raise ValueError(
                f'CocoKeypointMetric: keypoint_metric_items {unknown} are not '
                f'known; choose from {KEYPOINT_STAT_NAMES}.')
        self.keypoint_metric_items = items
        self.keypoint_sigmas = keypoint_sigmas
        self.max_keypoint_dets = max_keypoint_dets
        if self._coco_api is not None:
            self._complete_annotations(self._coco_api)

    @staticmethod
    def _complete_annotations(coco_api: COCO) -> None:
        """Give every annotation ``area`` and ``num_keypoints`` (in place,
        only where absent), by the dataset's rule."""
        for ann in coco_api.dataset.get('annotations', []):
            img_info = coco_api.imgs.get(ann.get('image_id'))
            if img_info is not None:
                ann.update(complete_annotation(ann, img_info))

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """``CocoMetric.process`` + each prediction's keypoints and scores."""
        super().process(data_batch, data_samples)
        new_results = self.results[len(self.results) - len(data_samples):]
        for (_, result), data_sample in zip(new_results, data_samples):
            pred = data_sample['pred_instances']
            if 'keypoints' not in pred:
                if self.evaluate_keypoints:
                    raise ValueError(
                        'CocoKeypointMetric: pred_instances has no '
                        'keypoints; the model needs a keypoint branch '
                        "(type='KeypointRoIHead'), or drop 'keypoints' "
                        'from metric.')
                continue
            result['keypoints'] = pred['keypoints'].detach().cpu().numpy()
            result['keypoint_scores'] = (
                pred['keypoint_scores'].detach().cpu().numpy())

    def results2json(self, results: Sequence[dict],
                     outfile_prefix: str) -> dict:
        """mmdet's json files plus ``{outfile_prefix}.keypoints.json``."""
        result_files = super().results2json(results, outfile_prefix)
        if 'keypoints' not in results[0]:
            return result_files
        keypoint_json = []
        for idx, result in enumerate(results):
            image_id = result.get('img_id', idx)
            for i, label in enumerate(result['labels']):
                xy = result['keypoints'][i] - KEYPOINT_PIXEL_CENTRE_OFFSET
                triplets = np.concatenate(
                    [xy, result['keypoint_scores'][i][:, None]], axis=1)
                keypoint_json.append(
                    dict(
                        image_id=image_id,
                        category_id=self.cat_ids[label],
                        keypoints=[float(v) for v in triplets.reshape(-1)],
                        score=float(result['scores'][i])))
        result_files['keypoints'] = f'{outfile_prefix}.keypoints.json'
        dump(keypoint_json, result_files['keypoints'])
        return result_files

    def gt_to_coco_json(self, gt_dicts: Sequence[dict],
                        outfile_prefix: str) -> str:
        """mmdet's conversion, with keypoints added (no ``ann_file`` case)."""
        path = super().gt_to_coco_json(gt_dicts, outfile_prefix)
        coco_json = load(path)
        annotations = iter(coco_json.get('annotations', []))
        for gt_dict in gt_dicts:
            for ann in gt_dict['anns']:
                coco_ann = next(annotations)
                visible = np.asarray(ann['keypoints_visible']) > 0
                xy = (np.asarray(ann['keypoints'], dtype=np.float64) -
                      KEYPOINT_PIXEL_CENTRE_OFFSET)
                triplets = np.concatenate(
                    [xy, 2.0 * visible[:, None]], axis=1)
                triplets[~visible] = 0
                coco_ann['keypoints'] = [float(v) for v in triplets.ravel()]
                # The dataset's (the file's) num_keypoints and area, as an
                # ann_file metric would read them.
                coco_ann['num_keypoints'] = int(
                    ann.get('num_keypoints', visible.sum()))
                if 'area' in ann:
                    coco_ann['area'] = float(ann['area'])
        names = self.dataset_meta.get('keypoint_names', ())
        for category in coco_json['categories']:
            category['keypoints'] = list(names)
            category['skeleton'] = [[a + 1, b + 1] for a, b in
                                    self.dataset_meta.get('skeleton', ())]
        dump(coco_json, path)
        return path

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Box metrics from ``CocoMetric``, then keypoint OKS AP."""
        if self.evaluate_keypoints and results:
            self._check_keypoint_counts(results)
        tmp_dir = None
        outfile_prefix = self.outfile_prefix
        if outfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            outfile_prefix = osp.join(tmp_dir.name, 'results')
        # The parent writes every json under our prefix (it only makes its
        # own temporary one when outfile_prefix is None).
        self.outfile_prefix = outfile_prefix
        try:
            eval_results = OrderedDict(super().compute_metrics(results))
            if self.evaluate_keypoints and not self.format_only:
                eval_results.update(
                    self._evaluate_keypoints(
                        f'{outfile_prefix}.keypoints.json'))
        finally:
            if tmp_dir is not None:
                self.outfile_prefix = None
                tmp_dir.cleanup()
        return eval_results

    def _sigmas(self) -> np.ndarray:
        sigmas = self.keypoint_sigmas
        if sigmas is None:
            sigmas = (self.dataset_meta or {}).get(
                'keypoint_sigmas', COCO_PERSON_KEYPOINT_SIGMAS)
        return np.asarray(sigmas, dtype=np.float64)

    def _evaluate_keypoints(self, keypoint_file: str) -> Dict[str, float]:
        """pycocotools OKS evaluation of the dumped keypoint results."""
        logger: MMLogger = MMLogger.get_current_instance()
        logger.info('Evaluating keypoints...')
        predictions = load(keypoint_file) if osp.exists(keypoint_file) else []
        if not predictions:
            logger.error('No keypoint predictions: keypoint AP is 0.')
            return {f'keypoints_{item}': 0.0
                    for item in self.keypoint_metric_items}
        sigmas = self._sigmas()
        check_keypoint_counts('CocoKeypointMetric', [
            ('keypoint_sigmas', len(sigmas)),
            ('K in the ground truth', self._num_gt_keypoints(self._coco_api))
        ])
        coco_dt = self._coco_api.loadRes(predictions)
        coco_eval = COCOeval(self._coco_api, coco_dt, 'keypoints')
        coco_eval.params.kpt_oks_sigmas = sigmas
        coco_eval.params.catIds = self.cat_ids
        coco_eval.params.imgIds = self.img_ids
        coco_eval.params.maxDets = [self.max_keypoint_dets]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        stats = dict(zip(KEYPOINT_STAT_NAMES, coco_eval.stats))
        logger.info('keypoints_mAP_copypaste: ' +
                    ' '.join(f'{stats[k]:.3f}'
                             for k in KEYPOINT_STAT_NAMES[:5]))
        return {
            f'keypoints_{item}': float(f'{round(stats[item], 3)}')
            for item in self.keypoint_metric_items
        }

    def _check_keypoint_counts(self, results: list) -> None:
        """Predictions, metainfo, sigmas and ground truth agree on K."""
        # results: (gt, prediction) pairs, as CocoMetric.process stores
        # them; (N, K, 2) per image, K is known even where N == 0.
        predicted = next((pred['keypoints'].shape[1] for _, pred in results
                          if 'keypoints' in pred), None)
        counts = [('K (predictions: keypoint_head.num_keypoints)', predicted)]
        counts += [(key, n) for key, n in metainfo_counts(
            self.dataset_meta or {}) if key != 'keypoint_sigmas']
        sigmas_from = ('keypoint_sigmas' if self.keypoint_sigmas is None else
                       'keypoint_sigmas (metric argument)')
        counts.append((sigmas_from, len(self._sigmas())))
        if self._coco_api is not None:
            counts.append(('K in the file (ann_file)',
                           self._num_gt_keypoints(self._coco_api)))
        check_keypoint_counts('CocoKeypointMetric', counts)

    @staticmethod
    def _num_gt_keypoints(coco_api: COCO) -> Optional[int]:
        for ann in coco_api.dataset.get('annotations', []):
            if ann.get('keypoints'):
                return len(ann['keypoints']) // 3
        return None
