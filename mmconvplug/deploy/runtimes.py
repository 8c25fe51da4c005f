"""Inference sessions over an exported ONNX file, one per runtime.

Every runtime is wrapped as the same small callable: ``session(*arrays)``
takes the graph's inputs in order (numpy arrays) and returns its outputs in
order, so the metric (:mod:`.backend_model`), the INT8 report and the
runtime comparison run any of them unchanged.

* ``'onnxruntime'`` (:class:`OnnxRuntimeSession`): onnxruntime's CPU
  execution provider, ``pip install mmconvplug[deploy]``.
* ``'openvino'``: OpenVINO's CPU plugin, ``pip install
  mmconvplug[openvino]`` (see :mod:`.openvino_runtime`).
"""
from abc import ABC, abstractmethod
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np


class DeployDependencyError(ImportError):
    """A package a deploy step needs (onnx, onnxruntime, ...) is missing."""


def require(module: str, extra: str = 'deploy',
            packages: str = 'onnx onnxruntime'):
    """Import ``module`` or raise :class:`DeployDependencyError` naming the
    extra that installs it.

    Args:
        module (str): the module to import, e.g. ``'onnxruntime'``.
        extra (str): the mmconvplug extra that brings it. Defaults to
            ``'deploy'``.
        packages (str): the pip package names, for the message.

    Returns:
        module: the imported module.

    Raises:
        DeployDependencyError: ``module`` is not installed.
    """
    try:
        return __import__(module)
    except ImportError as error:
        raise DeployDependencyError(
            f'{module} is not installed: this step needs it. Install it '
            f'with `pip install mmconvplug[{extra}]` (or `pip install '
            f'{packages}`).') from error


class InferenceSession(ABC):
    """One ONNX graph loaded in a runtime (the interface every runtime
    implements: :meth:`__call__`).

    Args:
        model (str | bytes): the ``.onnx`` file, or its serialized bytes.
        num_threads (int, optional): intra-op threads. Defaults to None
            (torch's current thread count).

    Attributes:
        backend (str): the runtime's name (``'onnxruntime'``...).
        input_names (list[str]): the graph's inputs, in order.
        output_names (list[str]): the graph's outputs, in order.
    """

    backend = ''
    input_names: List[str]
    output_names: List[str]

    @abstractmethod
    def __call__(self, *arrays: np.ndarray) -> List[np.ndarray]:
        """Run the graph on ``arrays`` (one per input, in order)."""

    def _check_arity(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != len(self.input_names):
            raise ValueError(
                f'The ONNX graph takes {len(self.input_names)} inputs '
                f'({", ".join(self.input_names)}); got {len(arrays)}.')


def _default_threads(num_threads: Optional[int]) -> int:
    if num_threads:
        return int(num_threads)
    import torch
    return max(1, torch.get_num_threads())


class OnnxRuntimeSession(InferenceSession):
    """onnxruntime's CPU execution provider (:class:`InferenceSession`)."""

    backend = 'onnxruntime'

    def __init__(self, model: Union[str, bytes],
                 num_threads: Optional[int] = None) -> None:
        ort = require('onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads = _default_threads(num_threads)
        self._session = ort.InferenceSession(
            model, options, providers=['CPUExecutionProvider'])
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def __call__(self, *arrays: np.ndarray) -> List[np.ndarray]:
        self._check_arity(arrays)
        feeds = {name: np.ascontiguousarray(array)
                 for name, array in zip(self.input_names, arrays)}
        return list(self._session.run(None, feeds))


def _openvino_session(model: Union[str, bytes],
                      num_threads: Optional[int] = None) -> InferenceSession:
    from .openvino_runtime import OpenVINOSession
    return OpenVINOSession(model, num_threads=num_threads)


#: runtime name -> session factory ``(model, num_threads) -> session``.
BACKENDS: Dict[str, Callable[..., InferenceSession]] = {
    'onnxruntime': OnnxRuntimeSession,
    'openvino': _openvino_session,
}


def open_session(model: Union[str, bytes], backend: str = 'onnxruntime',
                 num_threads: Optional[int] = None) -> InferenceSession:
    """Load an ONNX graph in the runtime ``backend``.

    Args:
        model (str | bytes): the ``.onnx`` file or its bytes.
        backend (str): a key of :data:`BACKENDS`. Defaults to
            ``'onnxruntime'``.
        num_threads (int, optional): intra-op threads. Defaults to None.

    Returns:
        InferenceSession: the loaded graph.

    Raises:
        ValueError: ``backend`` is not a known runtime.
        DeployDependencyError: the runtime is not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f'Unknown runtime {backend!r}: choose one of '
            f'{", ".join(sorted(BACKENDS))}.')
    return BACKENDS[backend](model, num_threads=num_threads)
