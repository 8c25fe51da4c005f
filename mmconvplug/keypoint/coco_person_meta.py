"""COCO person-keypoint metadata: names, skeleton, flip pairs and OKS sigmas.

These are the constants every part of the keypoint branch shares: the
dataset puts them in its ``metainfo``, the flip transform swaps left/right
joints with :func:`flip_indices_from_names`, the metric scores with the
sigmas and the visualizer draws the skeleton.
"""
from typing import List, Sequence, Tuple

COCO_PERSON_KEYPOINT_NAMES: Tuple[str, ...] = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle')

# Limbs as pairs of 0-based keypoint indices (the json stores them 1-based).
COCO_PERSON_SKELETON: Tuple[Tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12),
    (5, 6), (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3),
    (2, 4), (3, 5), (4, 6))

# Per-keypoint OKS falloff, from the COCO keypoint evaluation (cocoeval.py).
COCO_PERSON_KEYPOINT_SIGMAS: Tuple[float, ...] = (
    .026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107,
    .107, .087, .087, .089, .089)


def flip_indices_from_names(names: Sequence[str]) -> List[int]:
    """Index map that swaps every ``left_*`` keypoint with its ``right_*``.

    ``flipped = keypoints[:, flip_indices]`` relabels the joints of a
    mirrored person. Names without a left/right partner map to themselves.

    Raises:
        ValueError: a ``left_x`` has no ``right_x`` (or the reverse).
    """
    position = {name: i for i, name in enumerate(names)}
    indices = []
    for name in names:
        partner = name
        if name.startswith('left_'):
            partner = 'right_' + name[len('left_'):]
        elif name.startswith('right_'):
            partner = 'left_' + name[len('right_'):]
        if partner not in position:
            raise ValueError(
                f'keypoint names: {name!r} has no mirrored partner '
                f'{partner!r}; every left_* keypoint needs a right_* one '
                f'(got {list(names)}). Fix the names or pass flip_indices '
                'explicitly in the dataset metainfo.')
        indices.append(position[partner])
    return indices


COCO_PERSON_FLIP_INDICES: Tuple[int, ...] = tuple(
    flip_indices_from_names(COCO_PERSON_KEYPOINT_NAMES))

COCO_PERSON_METAINFO = dict(
    classes=('person', ),
    palette=[(220, 20, 60)],
    keypoint_names=COCO_PERSON_KEYPOINT_NAMES,
    skeleton=COCO_PERSON_SKELETON,
    flip_indices=COCO_PERSON_FLIP_INDICES,
    keypoint_sigmas=COCO_PERSON_KEYPOINT_SIGMAS)
