"""Deployment beyond folding: ONNX export of every model family, its metric
re-measured through the exported graphs, and the runtimes that run them.

* :mod:`.onnx_export`: one module -> one ONNX graph, checked.
* :mod:`.graphs`, :mod:`.model_export`: a detector or segmentor -> its
  graphs (two-stage: image + RoI graphs) and a manifest, checked.
* :mod:`.backend_model`, :mod:`.evaluation`: the stock test loop and
  evaluator through the exported graphs, beside PyTorch's.
* :mod:`.runtimes`: onnxruntime and OpenVINO sessions.

Needs ``pip install mmconvplug[deploy]`` (onnx, onnxruntime).
"""
from .model_export import (
    ModelExport,
    export_checkpoint_onnx,
    export_model_onnx,
    export_paths,
)
from .onnx_export import (
    OnnxCheck,
    OnnxExport,
    TensorOutputs,
    check_onnx,
    export_onnx,
    onnx_bytes,
)
from .runtimes import (
    BACKENDS,
    DeployDependencyError,
    InferenceSession,
    OnnxRuntimeSession,
    open_session,
)

__all__ = [
    'BACKENDS', 'DeployDependencyError', 'InferenceSession', 'ModelExport',
    'OnnxCheck', 'OnnxExport', 'OnnxRuntimeSession', 'TensorOutputs',
    'check_onnx', 'export_checkpoint_onnx', 'export_model_onnx',
    'export_onnx', 'export_paths', 'onnx_bytes', 'open_session'
]
