"""mmcv's ``RoIAlign`` as the standard ONNX ``RoiAlign`` of opset 16.

mmcv 2.1's own ONNX symbolic emulates ``aligned=True`` by shifting the
boxes, with the opset-10 operator, whose box size is clamped to at least one
pixel. mmdet's RoI heads use ``aligned=True``, which opset 16 states exactly
(``coordinate_transformation_mode='half_pixel'``: shift by half a pixel, no
clamp; Detectron2 / torchvision ``aligned=True`` semantics; onnxruntime and
OpenVINO implement it). :func:`onnx_roi_align` swaps the symbolic in for the
time of one export; the eager op is untouched.

Sources: ONNX operator docs, ``RoiAlign`` (opset 16); mmcv
``mmcv/ops/roi_align.py``; mmdeploy ``mmdeploy/mmcv/ops/roi_align.py``
(which makes the same choice from opset 16).
"""
import contextlib
from typing import Iterator

import torch

#: The oldest opset whose ``RoiAlign`` states mmdet's ``aligned=True``.
ROI_ALIGN_MIN_OPSET = 16


def _roi_align_symbolic(g, input, rois, output_size, spatial_scale,
                        sampling_ratio, pool_mode, aligned):
    """ONNX ``RoiAlign`` (opset 16) for mmcv's ``RoIAlignFunction``.

    mmcv's ``rois`` are ``(K, 5)``: the image index, then ``x1, y1, x2,
    y2`` in input pixels; ONNX takes the boxes ``(K, 4)`` and the indices
    ``(K,)`` (int64) apart.
    """
    index = g.op('Constant', value_t=torch.tensor(0, dtype=torch.long))
    batch_indices = g.op('Gather', rois, index, axis_i=1)
    batch_indices = g.op('Cast', batch_indices,
                         to_i=torch.onnx.TensorProtoDataType.INT64)
    columns = g.op('Constant',
                   value_t=torch.tensor([1, 2, 3, 4], dtype=torch.long))
    boxes = g.op('Gather', rois, columns, axis_i=1)
    height, width = output_size
    return g.op(
        'RoiAlign', input, boxes, batch_indices,
        coordinate_transformation_mode_s=(
            'half_pixel' if aligned else 'output_half_pixel'),
        mode_s=pool_mode, output_height_i=int(height),
        output_width_i=int(width), spatial_scale_f=float(spatial_scale),
        sampling_ratio_i=max(0, int(sampling_ratio)))


@contextlib.contextmanager
def onnx_roi_align() -> Iterator[None]:
    """Export mmcv's ``RoIAlign`` as ONNX ``RoiAlign`` (opset >= 16) inside
    the block; mmcv's own symbolic is restored on exit.

    Raises:
        ImportError: mmcv's ops are not built (``mmcv.ops`` fails).
    """
    from mmcv.ops.roi_align import RoIAlignFunction
    original = RoIAlignFunction.__dict__['symbolic']
    RoIAlignFunction.symbolic = staticmethod(_roi_align_symbolic)
    try:
        yield
    finally:
        RoIAlignFunction.symbolic = original
