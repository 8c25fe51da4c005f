"""Tiny Pascal VOC: ``VOCdevkit/VOC2007`` and ``VOCdevkit/VOC2012`` as VOC.

Each year has ``JPEGImages/*.jpg``, ``Annotations/*.xml`` (``size``,
``object/name``, ``pose``, ``truncated``, ``difficult``, 1-based inclusive
``bndbox``) and ``ImageSets/Main/*.txt``. VOC2007 gets ``trainval`` and
``test`` (the stock VOC0712 configs test on VOC2007 test), VOC2012 gets
``trainval``. The objects use a few real VOC class names, so mmdet's
``VOCDataset`` (whose metainfo is always the 20 VOC classes) reads the data
with stock settings; mAP is averaged over the classes that have ground truth.
"""
from __future__ import annotations

import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .shapes import DrawnObject, compose_scene
from .validation import check_generator_args

#: The 20 Pascal VOC classes (mmdet's ``VOCDataset.METAINFO['classes']``).
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
#: Outline drawn for each VOC class the tiny set uses.
VOC_SHAPE_CLASSES: Dict[str, str] = {
    'circle': 'sheep',
    'square': 'tvmonitor',
    'triangle': 'boat',
    'star': 'aeroplane',
}
_MIN_AREA = 20  # pixels: smaller visible remnants are not annotated
#: An object is marked ``difficult`` (VOC evaluation ignores it) when less
#: than this fraction of it is visible, or its box is smaller than
#: ``_DIFFICULT_SIDE`` pixels.
_DIFFICULT_VISIBLE = 0.5
_DIFFICULT_SIDE = 8


def _object_xml(parent: ET.Element, obj: DrawnObject, width: int,
                height: int) -> None:
    x0, y0, x1, y1 = obj.box_xyxy()
    truncated = int(x0 == 0 or y0 == 0 or x1 == width - 1
                    or y1 == height - 1)
    difficult = int(obj.visible_fraction < _DIFFICULT_VISIBLE
                    or min(x1 - x0, y1 - y0) + 1 < _DIFFICULT_SIDE)
    node = ET.SubElement(parent, 'object')
    ET.SubElement(node, 'name').text = VOC_SHAPE_CLASSES[obj.shape]
    ET.SubElement(node, 'pose').text = 'Unspecified'
    ET.SubElement(node, 'truncated').text = str(truncated)
    ET.SubElement(node, 'difficult').text = str(difficult)
    box = ET.SubElement(node, 'bndbox')
    # VOC boxes are 1-based and inclusive.
    for tag, value in (('xmin', x0 + 1), ('ymin', y0 + 1), ('xmax', x1 + 1),
                       ('ymax', y1 + 1)):
        ET.SubElement(box, tag).text = str(value)


def _annotation_xml(year: str, file_name: str, objects: List[DrawnObject],
                    width: int, height: int) -> ET.ElementTree:
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = f'VOC{year}'
    ET.SubElement(root, 'filename').text = file_name
    source = ET.SubElement(root, 'source')
    ET.SubElement(source, 'database').text = 'mmconvplug tiny VOC (synthetic)'
    size = ET.SubElement(root, 'size')
    ET.SubElement(size, 'width').text = str(width)
    ET.SubElement(size, 'height').text = str(height)
    ET.SubElement(size, 'depth').text = '3'
    ET.SubElement(root, 'segmented').text = '0'
    for obj in objects:
        if obj.visible_mask.sum() >= _MIN_AREA:
            _object_xml(root, obj, width, height)
    ET.indent(root)
    return ET.ElementTree(root)


def _write_images(year_root: str, year: str, ids: List[str],
                  size: Tuple[int, int], rng: np.random.Generator,
                  num_objects: Tuple[int, int]) -> None:
    width, height = size
    for image_id in ids:
        img, objects = compose_scene(rng, width, height,
                                     list(VOC_SHAPE_CLASSES),
                                     num_objects=num_objects)
        cv2.imwrite(osp.join(year_root, 'JPEGImages', f'{image_id}.jpg'),
                    img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        _annotation_xml(year, f'{image_id}.jpg', objects, width,
                        height).write(
                            osp.join(year_root, 'Annotations',
                                     f'{image_id}.xml'))


def _write_image_set(year_root: str, name: str, ids: List[str]) -> str:
    path = osp.join(year_root, 'ImageSets', 'Main', f'{name}.txt')
    with open(path, 'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))
    return path


def make_tiny_voc(root: str,
                  num_train: int = 64,
                  num_val: int = 16,
                  size: Sequence[int] = (128, 128),
                  seed: int = 0,
                  num_objects: Tuple[int, int] = (1, 4)) -> Dict[str, str]:
    """Write a tiny ``VOCdevkit`` under ``root`` (e.g. ``data/tiny``).

    ``num_train`` images are split between VOC2007 ``trainval`` (the first
    half, rounded up) and VOC2012 ``trainval``; ``num_val`` images form
    VOC2007 ``test``. Returns the image-set paths, keyed
    ``voc2007_trainval``, ``voc2012_trainval``, ``voc2007_test``, and
    ``devkit`` (the ``data_root`` to put in a config).
    """
    check_generator_args(num_train, num_val, size, seed)
    if num_train < 2:
        raise ValueError(
            f'num_train={num_train} is too small for tiny VOC: VOC2007 and '
            'VOC2012 trainval each need at least one image, so it must be '
            '>= 2 (e.g. --num-train 16).')
    rng = np.random.default_rng(seed)
    size = (int(size[0]), int(size[1]))
    devkit = osp.join(root, 'VOCdevkit')
    n07 = (num_train + 1) // 2
    splits = {
        '2007': dict(trainval=[f'{i:06d}' for i in range(1, n07 + 1)],
                     test=[f'{i:06d}' for i in range(n07 + 1,
                                                     n07 + num_val + 1)]),
        '2012': dict(trainval=[f'2012_{i:06d}' for i in range(
            1, num_train - n07 + 1)]),
    }
    out = dict(devkit=devkit)
    for year, sets in splits.items():
        year_root = osp.join(devkit, f'VOC{year}')
        for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
            os.makedirs(osp.join(year_root, sub), exist_ok=True)
        for name, ids in sets.items():
            _write_images(year_root, year, ids, size, rng, num_objects)
            out[f'voc{year}_{name}'] = _write_image_set(year_root, name, ids)
    return out
