"""Deployment beyond folding: ONNX export with a dynamic batch axis.

See :mod:`.onnx_export`; needs ``pip install mmconvplug[deploy]`` (onnx,
onnxruntime).
"""
from .onnx_export import (
    DeployDependencyError,
    OnnxCheck,
    OnnxExport,
    TensorOutputs,
    check_onnx,
    export_checkpoint_onnx,
    export_onnx,
    onnx_bytes,
)

__all__ = [
    'DeployDependencyError', 'OnnxCheck', 'OnnxExport', 'TensorOutputs',
    'check_onnx', 'export_checkpoint_onnx', 'export_onnx', 'onnx_bytes'
]
