"""One check, one message: every list that is "one per keypoint" has K
entries.

K is the model's ``keypoint_head.num_keypoints`` (the heatmaps it
predicts); the dataset metainfo gives ``keypoint_names``, ``flip_indices``
and ``keypoint_sigmas`` (pycocotools' ``kpt_oks_sigmas``, whose length must
be K), and the annotation file its own count (``keypoints`` triplets per
annotation, the category's ``keypoints`` names). When any two disagree,
:func:`check_keypoint_counts` raises :class:`KeypointCountError` naming all
of them, so the one that is off is visible at once. Called by
``check_config`` (model vs metainfo, before anything is built), the dataset
(metainfo vs file) and the metric (predictions vs metainfo vs file).
"""
from typing import Mapping, Optional, Sequence, Tuple

#: What to do about a mismatch (every message ends with it).
KEYPOINT_COUNT_FIX = (
    'Fix: give the dataset metainfo one entry per keypoint in each of '
    'keypoint_names, flip_indices and keypoint_sigmas (e.g. '
    'metainfo=dict(keypoint_names=..., flip_indices=..., '
    'keypoint_sigmas=..., skeleton=...) in the dataset config), set '
    'model.roi_head.keypoint_head.num_keypoints to K, or use a dataset '
    'that ships its metainfo (CocoKeypointDataset: 17, '
    'CrowdPoseKeypointDataset / AicKeypointDataset: 14). See '
    'docs/keypoint_rcnn.md.')

METAINFO_KEYS = ('keypoint_names', 'flip_indices', 'keypoint_sigmas')


class KeypointCountError(ValueError):
    """Keypoint lists (model, metainfo, file) of different lengths."""


def metainfo_counts(metainfo: Mapping) -> Sequence[Tuple[str, Optional[int]]]:
    """``(key, length)`` of the metainfo's per-keypoint lists (None: the
    key is absent)."""
    return [(key, len(metainfo[key]) if metainfo.get(key) is not None else
             None) for key in METAINFO_KEYS]


def check_keypoint_counts(where: str,
                          counts: Sequence[Tuple[str, Optional[int]]],
                          fix: str = KEYPOINT_COUNT_FIX) -> None:
    """Raise unless every known count in ``counts`` is the same.

    Args:
        where: who checks (starts the message), e.g. ``'CocoKeypointMetric'``.
        counts: ``(what, length)`` pairs, e.g. ``('K (predictions)', 17)``,
            ``('keypoint_sigmas', 14)``; a None length is listed as
            "unknown" and not compared.
        fix: the advice that ends the message.

    Raises:
        KeypointCountError: two known lengths differ. The message lists
            every pair of ``counts``.
    """
    known = {length for _, length in counts if length is not None}
    if len(known) <= 1:
        return
    listing = ', '.join(
        f'{what}: {"unknown" if length is None else length}'
        for what, length in counts)
    raise KeypointCountError(
        f'{where}: the number of keypoints disagrees ({listing}); each must '
        f'be K, the keypoints per person. {fix}')
