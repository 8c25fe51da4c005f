"""Tiny Cityscapes: ``leftImg8bit/`` and ``gtFine/`` exactly as Cityscapes.

Street-like scenes: sky, buildings, vegetation, road with lane marks,
sidewalks, poles with traffic signs, cars and people, and sometimes the ego
vehicle's bonnet (ignored, as in Cityscapes). Each region class has its own
colour and texture. For every image the generator writes
``<city>_<seq>_<frame>_leftImg8bit.png`` and, under ``gtFine``,
``*_gtFine_labelTrainIds.png`` (the 19 train ids, 255 = ignore; what mmseg's
``CityscapesDataset`` reads) and ``*_gtFine_labelIds.png`` (the real
Cityscapes label ids, what cityscapesscripts' evaluation reads).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from .shapes import person_keypoints, person_mask
from .validation import check_generator_args

#: The 19 Cityscapes train classes, index = train id.
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation',
                      'terrain', 'sky', 'person', 'rider', 'car', 'truck',
                      'bus', 'train', 'motorcycle', 'bicycle')
#: Train id -> Cityscapes label id (cityscapesscripts ``labels.py``).
TRAIN_ID_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26,
                        27, 28, 31, 32, 33)
IGNORE_INDEX = 255
#: Label id written where the train id is 255: 1 = ``ego vehicle``.
EGO_VEHICLE_LABEL_ID = 1
_CITIES = {'train': ('aachen', 'bochum'), 'val': ('frankfurt', )}

_T = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}
#: Base RGB colour per drawn region (train id), close to Cityscapes' palette.
_COLOUR = {
    _T['road']: (110, 90, 110), _T['sidewalk']: (200, 120, 190),
    _T['building']: (90, 90, 90), _T['pole']: (200, 200, 200),
    _T['traffic sign']: (230, 220, 40), _T['vegetation']: (90, 150, 40),
    _T['sky']: (90, 150, 210), _T['person']: (220, 30, 70),
    _T['car']: (20, 30, 160), IGNORE_INDEX: (30, 30, 30)
}


def _fill(img: np.ndarray, label: np.ndarray, mask: np.ndarray, train_id: int,
          rng: np.random.Generator, noise: float = 8.0) -> None:
    colour = np.asarray(_COLOUR[train_id], float) + rng.normal(0, 10, 3)
    pixels = colour + rng.normal(0, noise, size=(int(mask.sum()), 3))
    img[mask] = np.clip(pixels, 0, 255).astype(np.uint8)
    label[mask] = train_id


def _street_scene(rng: np.random.Generator, width: int,
                  height: int) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB street image and its train-id map."""
    img = np.zeros((height, width, 3), np.uint8)
    label = np.full((height, width), IGNORE_INDEX, np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    horizon = int(rng.uniform(0.35, 0.5) * height)
    everything = np.ones((height, width), bool)
    _fill(img, label, everything, _T['sky'], rng, noise=4)
    # Buildings (with a window grid) and trees along the horizon.
    x = 0
    while x < width:
        w = int(rng.uniform(0.12, 0.3) * width)
        top = int(rng.uniform(0.05, 0.8) * horizon)
        block = (xx >= x) & (xx < x + w) & (yy >= top) & (yy < horizon + 2)
        if rng.random() < 0.7:
            _fill(img, label, block, _T['building'], rng)
            windows = block & ((xx - x) % 6 < 3) & ((yy - top) % 7 < 3)
            img[windows] = np.clip(img[windows].astype(int) + 45, 0,
                                   255).astype(np.uint8)
        else:
            cy, r = top + (horizon - top) * 0.5, (horizon - top) * 0.6 + 2
            crown = ((xx - x - w / 2)**2 + (yy - cy)**2 < r * r) & (
                yy < horizon + 2)
            _fill(img, label, crown, _T['vegetation'], rng, noise=25)
        x += w
    # Road (a trapezoid towards a vanishing point) and sidewalks beside it.
    vx = rng.uniform(0.35, 0.65) * width
    t = np.clip((yy - horizon) / max(1, height - horizon), 0, 1)
    half_road = 0.04 * width + t * 0.55 * width
    half_walk = half_road + 0.05 * width + t * 0.2 * width
    ground = yy >= horizon
    _fill(img, label, ground & (np.abs(xx - vx) < half_walk), _T['sidewalk'],
          rng, noise=12)
    ground_rest = ground & (np.abs(xx - vx) >= half_walk)
    _fill(img, label, ground_rest, _T['vegetation'], rng, noise=25)
    road = ground & (np.abs(xx - vx) < half_road)
    _fill(img, label, road, _T['road'], rng, noise=6)
    lane = road & (np.abs(xx - vx) < 0.01 * width + t * 0.02 * width) & (
        (yy // 4) % 2 == 0)
    img[lane] = 235  # lane marks are road in Cityscapes
    # Poles carrying signs, on the sidewalks.
    for _ in range(int(rng.integers(0, 3))):
        side = rng.choice([-1, 1])
        foot = int(rng.uniform(horizon + 0.2 * (height - horizon), height - 2))
        tf = (foot - horizon) / max(1, height - horizon)
        px = int(vx + side * (0.04 * width + tf * 0.55 * width + 0.03 * width
                              + tf * 0.1 * width))
        top = int(max(0, foot - rng.uniform(0.4, 0.7) * height))
        pw = max(1, int(0.012 * width + tf * 0.01 * width))
        pole = (np.abs(xx - px) <= pw) & (yy >= top) & (yy <= foot)
        _fill(img, label, pole, _T['pole'], rng, noise=5)
        s = max(3, int(0.05 * width))
        sign = (np.abs(xx - px) <= s) & (yy >= top) & (yy < top + s)
        _fill(img, label, sign, _T['traffic sign'], rng, noise=5)
    # Cars on the road, farther ones smaller and higher.
    for _ in range(int(rng.integers(1, 4))):
        tf = rng.uniform(0.15, 0.9)
        cy = horizon + tf * (height - horizon)
        cw = (0.08 + 0.3 * tf) * width
        ch = cw * 0.5
        cx = vx + rng.uniform(-0.8, 0.8) * (0.04 * width + tf * 0.55 * width)
        body = (np.abs(xx - cx) < cw / 2) & (yy > cy - ch) & (yy < cy)
        cabin = (np.abs(xx - cx) < cw / 3) & (yy > cy - 1.5 * ch) & (
            yy <= cy - ch)
        _fill(img, label, body | cabin, _T['car'], rng, noise=6)
        glass = (np.abs(xx - cx) < cw / 4) & (yy > cy - 1.4 * ch) & (
            yy < cy - 1.05 * ch)
        img[glass] = (150, 190, 220)
    # People on the sidewalks.
    for _ in range(int(rng.integers(0, 3))):
        tf = rng.uniform(0.2, 0.9)
        ph = (0.15 + 0.4 * tf) * height
        foot = horizon + tf * (height - horizon)
        side = rng.choice([-1, 1])
        px = vx + side * (0.06 * width + tf * 0.65 * width)
        kp = person_keypoints(rng, px, foot - ph / 2, ph)
        _fill(img, label, person_mask(kp, ph, height, width), _T['person'],
              rng, noise=10)
    # The ego vehicle's bonnet: ignored in training and evaluation.
    if rng.random() < 0.5:
        bonnet = yy > height - rng.uniform(0.05, 0.12) * height - 0.05 * (
            height) * np.cos(np.pi * (xx / width - 0.5))
        _fill(img, label, bonnet, IGNORE_INDEX, rng, noise=3)
    return img, label


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a train-id map to Cityscapes label ids (255 -> ego vehicle)."""
    lut = np.full(256, EGO_VEHICLE_LABEL_ID, np.uint8)
    lut[:len(TRAIN_ID_TO_LABEL_ID)] = TRAIN_ID_TO_LABEL_ID
    return lut[train_ids]


def make_tiny_cityscapes(root: str,
                         num_train: int = 16,
                         num_val: int = 8,
                         size: Sequence[int] = (128, 64),
                         seed: int = 0) -> Dict[str, str]:
    """Write a tiny Cityscapes under ``root`` (e.g. ``data/tiny/cityscapes``).

    Images are spread over a few real city names per split. Returns the
    folders written, keyed ``train_images``, ``val_images``, ``train_labels``,
    ``val_labels``.
    """
    check_generator_args(num_train, num_val, size, seed)
    rng = np.random.default_rng(seed)
    width, height = int(size[0]), int(size[1])
    out = {}
    for split, count in (('train', num_train), ('val', num_val)):
        cities = _CITIES[split]
        for i in range(count):
            city = cities[i % len(cities)]
            stem = f'{city}_{i // len(cities):06d}_{19:06d}'
            img_dir = osp.join(root, 'leftImg8bit', split, city)
            gt_dir = osp.join(root, 'gtFine', split, city)
            os.makedirs(img_dir, exist_ok=True)
            os.makedirs(gt_dir, exist_ok=True)
            img, train_ids = _street_scene(rng, width, height)
            cv2.imwrite(osp.join(img_dir, f'{stem}_leftImg8bit.png'),
                        img[..., ::-1])
            cv2.imwrite(osp.join(gt_dir, f'{stem}_gtFine_labelTrainIds.png'),
                        train_ids)
            cv2.imwrite(osp.join(gt_dir, f'{stem}_gtFine_labelIds.png'),
                        train_ids_to_label_ids(train_ids))
        out[f'{split}_images'] = osp.join(root, 'leftImg8bit', split)
        out[f'{split}_labels'] = osp.join(root, 'gtFine', split)
    return out
