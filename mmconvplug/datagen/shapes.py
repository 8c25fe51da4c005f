"""Deterministic synthetic scenes: coloured shapes on textured backgrounds.

The tiny COCO / VOC generators draw their images with the functions here. A
scene is a textured, low-saturation background with a few objects pasted on
top. Each object class has its own outline (circle, square, triangle, star,
...) and its own hue, so a small detector can learn the classes within a few
hundred iterations, while random scale, rotation, overlap (later objects
occlude earlier ones) and truncation at the border keep the task honest.

Every function takes a ``numpy.random.Generator``: the same seed gives the same
pixels and the same annotations on every machine.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Outline name -> base RGB colour. The outlines are what the classes look like.
SHAPE_COLOURS = {
    'circle': (220, 40, 40),
    'square': (40, 190, 60),
    'triangle': (40, 80, 230),
    'star': (240, 200, 30),
    'cross': (230, 60, 220),
    'hexagon': (30, 210, 220),
}


@dataclasses.dataclass
class DrawnObject:
    """One object pasted into a scene.

    Attributes:
        shape: outline name (a key of :data:`SHAPE_COLOURS`, or ``'person'``).
        full_mask: the object's pixels before any occlusion (bool, HxW).
        visible_mask: the pixels that are still the object's after later
            objects were drawn over it (bool, HxW).
        keypoints: (17, 2) float array for a person, else ``None``.
    """

    shape: str
    full_mask: np.ndarray
    visible_mask: np.ndarray
    keypoints: Optional[np.ndarray] = None

    @property
    def visible_fraction(self) -> float:
        """Visible pixels over all pixels that lie inside the image."""
        full = int(self.full_mask.sum())
        return float(self.visible_mask.sum()) / full if full else 0.0

    def box_xyxy(self) -> Tuple[int, int, int, int]:
        """Tight inclusive pixel box ``(x_min, y_min, x_max, y_max)`` of the
        visible mask."""
        ys, xs = np.nonzero(self.visible_mask)
        return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def textured_background(rng: np.random.Generator, height: int,
                        width: int) -> np.ndarray:
    """A low-saturation RGB texture: smooth noise plus stripes or a checker.

    Object colours are saturated, so the background never looks like an
    object, but it is busy enough that a detector must learn shapes rather
    than "anything that is not flat".
    """
    base = rng.uniform(70, 170, size=3)
    grey = base.mean()
    base = grey + 0.35 * (base - grey)  # desaturate
    coarse = rng.normal(0, 1, size=(max(2, height // 16), max(2, width // 16)))
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    img = base[None, None, :] + 18.0 * smooth[..., None]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = rng.integers(3)
    period = rng.uniform(6, 20)
    angle = rng.uniform(0, np.pi)
    if pattern == 0:  # stripes
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        img += 14.0 * np.sign(np.sin(2 * np.pi * phase))[..., None]
    elif pattern == 1:  # checker
        check = (np.floor(xx / period) + np.floor(yy / period)) % 2
        img += 14.0 * (2 * check - 1)[..., None]
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def shape_polygon(shape: str, cx: float, cy: float, size: float,
                  angle: float) -> np.ndarray:
    """Outline of ``shape`` centred at ``(cx, cy)``, ``size`` pixels across,
    rotated by ``angle`` radians, as an ``(N, 2)`` float array of (x, y)."""
    r = size / 2.0
    if shape == 'circle':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif shape == 'square':
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * r * 0.8
    elif shape == 'triangle':
        t = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6])
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
        pts[:, 1] += r * 0.25
    elif shape == 'star':
        t = np.linspace(-np.pi / 2, 1.5 * np.pi, 10, endpoint=False)
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * radii[:, None]
    elif shape == 'cross':
        a, b = 1.0, 0.35
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b],
                        [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]],
                       float) * r
    elif shape == 'hexagon':
        t = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    else:
        raise ValueError(
            f'shape={shape!r} is not a known outline; choose one of '
            f'{sorted(SHAPE_COLOURS)}.')
    if shape != 'circle':
        rot = np.array([[np.cos(angle), -np.sin(angle)],
                        [np.sin(angle), np.cos(angle)]])
        pts = pts @ rot.T
    return pts + np.array([cx, cy])


def _jitter_colour(rng: np.random.Generator,
                   rgb: Sequence[int]) -> np.ndarray:
    """The class colour, slightly varied so colour alone is not a lookup."""
    return np.clip(np.asarray(rgb, float) + rng.normal(0, 15, 3), 0, 255)


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray,
           rng: np.random.Generator) -> None:
    """Fill ``mask`` with ``colour`` plus a soft vertical shading and noise."""
    ys = np.nonzero(mask)[0]
    if ys.size == 0:
        return
    y0, y1 = ys.min(), ys.max() + 1
    shade = np.linspace(1.1, 0.85, max(1, y1 - y0))
    region = np.zeros((img.shape[0], 1), float)
    region[y0:y1, 0] = shade
    painted = colour[None, None, :] * region[..., None]
    painted = painted + rng.normal(0, 5, size=img.shape)
    img[mask] = np.clip(painted[mask], 0, 255).astype(np.uint8)


def polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise an (N, 2) polygon into a bool mask."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


_LIMBS = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14),
          (14, 16)]


def person_keypoints(rng: np.random.Generator, cx: float, cy: float,
                     height: float) -> np.ndarray:
    """The 17 COCO keypoints of an articulated stick person, ``height``
    pixels tall, centred at ``(cx, cy)``; random limb angles and lean.

    The person faces the viewer: its *left* side is on the image's right,
    as in COCO.
    """
    h = height
    lean = rng.uniform(-0.15, 0.15)
    neck = np.array([cx + lean * h * 0.3, cy - 0.28 * h])
    pelvis = np.array([cx, cy + 0.05 * h])
    head = neck + np.array([0, -0.12 * h])
    kp = np.zeros((17, 2))
    kp[0] = head + [0, 0.02 * h]  # nose
    kp[1] = head + [0.035 * h, -0.015 * h]  # left eye (image right)
    kp[2] = head + [-0.035 * h, -0.015 * h]
    kp[3] = head + [0.07 * h, 0.0]  # left ear
    kp[4] = head + [-0.07 * h, 0.0]
    kp[5] = neck + [0.11 * h, 0.02 * h]  # left shoulder
    kp[6] = neck + [-0.11 * h, 0.02 * h]
    kp[11] = pelvis + [0.08 * h, 0]  # left hip
    kp[12] = pelvis + [-0.08 * h, 0]

    def limb(start: np.ndarray, length: float, angle: float) -> np.ndarray:
        return start + length * np.array([np.sin(angle), np.cos(angle)])

    for side, sign in ((0, 1.0), (1, -1.0)):
        shoulder, hip = kp[5 + side], kp[11 + side]
        upper = sign * rng.uniform(0.1, 1.4)
        kp[7 + side] = limb(shoulder, 0.17 * h, upper)
        kp[9 + side] = limb(kp[7 + side], 0.16 * h,
                            upper + sign * rng.uniform(-0.6, 0.8))
        thigh = sign * rng.uniform(0.0, 0.45)
        kp[13 + side] = limb(hip, 0.22 * h, thigh)
        kp[15 + side] = limb(kp[13 + side], 0.22 * h,
                             thigh + rng.uniform(-0.3, 0.3))
    return kp


def person_mask(keypoints: np.ndarray, height: float, img_h: int,
                img_w: int) -> np.ndarray:
    """The person's silhouette: a head disc, a torso polygon and thick limbs."""
    mask = np.zeros((img_h, img_w), np.uint8)
    thick = max(2, int(round(height * 0.06)))
    head = (keypoints[3] + keypoints[4]) / 2
    cv2.circle(mask, tuple(np.round(head).astype(int)),
               max(2, int(round(height * 0.085))), 1, -1)
    torso = keypoints[[5, 6, 12, 11]]
    cv2.fillPoly(mask, [np.round(torso).astype(np.int32)], 1)
    neck_top = np.round(head).astype(int)
    neck_bottom = np.round((keypoints[5] + keypoints[6]) / 2).astype(int)
    cv2.line(mask, tuple(neck_top), tuple(neck_bottom), 1, thick)
    for a, b in _LIMBS:
        cv2.line(mask, tuple(np.round(keypoints[a]).astype(int)),
                 tuple(np.round(keypoints[b]).astype(int)), 1, thick)
    return mask.astype(bool)


def compose_scene(rng: np.random.Generator,
                  width: int,
                  height: int,
                  shapes: Sequence[str],
                  num_objects: Tuple[int, int] = (1, 4),
                  num_persons: Tuple[int, int] = (0, 0),
                  scale_range: Tuple[float, float] = (0.18, 0.5),
                  min_visible: float = 0.35,
                  max_tries: int = 30) -> Tuple[np.ndarray, List[DrawnObject]]:
    """Draw one scene; return the RGB image and the objects, in draw order.

    Args:
        rng: the random generator (determinism: same state, same scene).
        width, height: image size in pixels.
        shapes: outlines to choose from (one per class).
        num_objects: inclusive range of how many shape objects to draw.
        num_persons: inclusive range of how many stick persons to draw.
        scale_range: object size as a fraction of ``min(width, height)``.
        min_visible: a placement is retried when it would leave any earlier
            object with less than this fraction visible (bounded occlusion).
        max_tries: placement attempts per object before it is skipped.
    """
    img = textured_background(rng, height, width)
    short = min(width, height)
    kinds = [rng.choice(list(shapes)) for _ in range(
        rng.integers(num_objects[0], num_objects[1] + 1))]
    kinds += ['person'] * int(rng.integers(num_persons[0], num_persons[1] + 1))
    order = rng.permutation(len(kinds))
    objects: List[DrawnObject] = []
    for idx in order:
        kind = kinds[idx]
        for _ in range(max_tries):
            size = rng.uniform(*scale_range) * short
            keypoints = None
            if kind == 'person':
                size = min(size * 1.8, 0.95 * height)
                cx = rng.uniform(0.15, 0.85) * width
                cy = rng.uniform(0.5 * size, height - 0.5 * size)
                keypoints = person_keypoints(rng, cx, cy, size)
                mask = person_mask(keypoints, size, height, width)
            else:
                # The centre may sit near the border: the object is then
                # truncated, as in real photos.
                cx = rng.uniform(0.1, 0.9) * width
                cy = rng.uniform(0.1, 0.9) * height
                poly = shape_polygon(kind, cx, cy, size,
                                     rng.uniform(0, 2 * np.pi))
                mask = polygon_mask(poly, height, width)
            if mask.sum() < 30:
                continue
            if all((o.visible_mask & ~mask).sum() >= min_visible *
                   o.full_mask.sum() for o in objects):
                break
        else:
            continue
        for o in objects:
            o.visible_mask &= ~mask
        colour = _jitter_colour(
            rng, SHAPE_COLOURS.get(kind, (150, 90, 200)))
        if kind == 'person':
            colour = _jitter_colour(rng, (150, 90, 200))
        _paint(img, mask, colour, rng)
        if kind == 'person':
            head = (keypoints[3] + keypoints[4]) / 2
            head_mask = np.zeros((height, width), np.uint8)
            cv2.circle(head_mask, tuple(np.round(head).astype(int)),
                       max(2, int(round(size * 0.085))), 1, -1)
            _paint(img, head_mask.astype(bool) & mask,
                   _jitter_colour(rng, (235, 190, 150)), rng)
        objects.append(
            DrawnObject(kind, mask.copy(), mask.copy(), keypoints))
    return img, objects


def mask_polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (flat ``[x1, y1, x2, y2, ...]`` lists) of a bool mask's
    outer contours; contours with fewer than 3 points are dropped."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= 3:
            polys.append(c.reshape(-1).astype(float).tolist())
    return polys
