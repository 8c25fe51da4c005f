"""``KeypointDetLocalVisualizer``: mmdet's visualizer that draws skeletons.

Boxes, labels and masks are drawn by ``DetLocalVisualizer``; this subclass
then draws, for every instance holding ``keypoints``, its limbs (the
dataset's ``skeleton`` metainfo) and its keypoints as filled dots. Ground
truth shows keypoints with ``keypoints_visible > 0``; predictions those with
``keypoint_scores > keypoint_score_thr``.
"""
from typing import List, Optional, Tuple, Union

import numpy as np
from mmdet.visualization import DetLocalVisualizer
from mmengine.registry import VISUALIZERS
from mmengine.structures import InstanceData

from .coco_person_meta import COCO_PERSON_SKELETON

Color = Union[str, Tuple[int, int, int]]


@VISUALIZERS.register_module()
class KeypointDetLocalVisualizer(DetLocalVisualizer):
    """Draws boxes like ``DetLocalVisualizer`` plus keypoints and limbs.

    Args:
        name: the visualizer's instance name (mmengine keeps one per name).
        keypoint_color: fill colour of the keypoint dots.
        skeleton_color: colour of the limbs.
        keypoint_radius: dot radius in pixels.
        skeleton_line_width: limb width in pixels.
        keypoint_score_thr: predicted keypoints scoring at or below this
            (a spatial-softmax probability) are not drawn.
        **kwargs: ``DetLocalVisualizer`` arguments.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 keypoint_color: Color = (255, 128, 0),
                 skeleton_color: Color = (0, 255, 255),
                 keypoint_radius: float = 3,
                 skeleton_line_width: float = 2,
                 keypoint_score_thr: float = 0.0,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if keypoint_radius <= 0 or skeleton_line_width <= 0:
            raise ValueError(
                'KeypointDetLocalVisualizer: keypoint_radius and '
                'skeleton_line_width must be > 0, got '
                f'{keypoint_radius} and {skeleton_line_width}.')
        self.keypoint_color = keypoint_color
        self.skeleton_color = skeleton_color
        self.keypoint_radius = keypoint_radius
        self.skeleton_line_width = skeleton_line_width
        self.keypoint_score_thr = keypoint_score_thr

    def _draw_instances(self, image: np.ndarray, instances: InstanceData,
                        classes: Optional[List[str]],
                        palette: Optional[List[tuple]]) -> np.ndarray:
        drawn = super()._draw_instances(image, instances, classes, palette)
        if 'keypoints' not in instances or len(instances) == 0:
            return drawn
        keypoints = _to_numpy(instances.keypoints)
        if 'keypoint_scores' in instances:
            shown = _to_numpy(
                instances.keypoint_scores) > self.keypoint_score_thr
        elif 'keypoints_visible' in instances:
            shown = _to_numpy(instances.keypoints_visible) > 0
        else:
            shown = np.ones(keypoints.shape[:2], dtype=bool)
        self.set_image(drawn)
        self._draw_skeletons(keypoints, shown)
        return self.get_image()

    def _draw_skeletons(self, keypoints: np.ndarray,
                        shown: np.ndarray) -> None:
        """Limbs whose two ends are shown, then every shown keypoint."""
        skeleton = np.asarray(
            self.dataset_meta.get('skeleton', COCO_PERSON_SKELETON),
            dtype=np.int64).reshape(-1, 2)
        num_keypoints = keypoints.shape[1]
        skeleton = skeleton[(skeleton < num_keypoints).all(axis=1)]
        starts, ends = [], []
        for person, person_shown in zip(keypoints, shown):
            limb_shown = person_shown[skeleton[:, 0]] & person_shown[
                skeleton[:, 1]]
            starts.append(person[skeleton[limb_shown, 0]])
            ends.append(person[skeleton[limb_shown, 1]])
        starts = np.concatenate(starts) if starts else np.zeros((0, 2))
        ends = np.concatenate(ends) if ends else np.zeros((0, 2))
        if len(starts):
            self.draw_lines(
                np.stack([starts[:, 0], ends[:, 0]], axis=1),
                np.stack([starts[:, 1], ends[:, 1]], axis=1),
                colors=self.skeleton_color,
                line_widths=self.skeleton_line_width)
        points = keypoints[shown]
        if len(points):
            self.draw_circles(
                points,
                np.full(len(points), float(self.keypoint_radius)),
                edge_colors=self.keypoint_color,
                face_colors=self.keypoint_color,
                alpha=1.0)


def _to_numpy(value) -> np.ndarray:
    """Tensor or array -> numpy array on the CPU."""
    if hasattr(value, 'detach'):
        return value.detach().cpu().numpy()
    return np.asarray(value)
