"""An exported ONNX graph run by OpenVINO's CPU plugin.

The second runtime of :mod:`.runtimes` (``open_session(path, 'openvino')``;
``pip install mmconvplug[openvino]``). OpenVINO reads the ONNX file itself
(``openvino.Core.read_model``), keeping its dynamic axes (batch, spatial,
RoIs). The CPU plugin may run in bf16 or f16 where the CPU supports it
(its default ``INFERENCE_PRECISION_HINT``); it is pinned to f32 here, so
the outputs can be compared with onnxruntime's and PyTorch's at float32
tolerances. Inputs and outputs keep the ONNX graph's names and order.

Source: OpenVINO "Integrate OpenVINO with your application" and the CPU
device's precision-hint documentation.
"""
import os
import os.path as osp
import tempfile
from typing import List, Optional, Union

import numpy as np

from .runtimes import InferenceSession, _default_threads, require


class OpenVINOSession(InferenceSession):
    """OpenVINO's CPU plugin (:class:`~.runtimes.InferenceSession`).

    Args:
        model (str | bytes): the ``.onnx`` file or its bytes.
        num_threads (int, optional): inference threads. Defaults to None
            (torch's current thread count).

    Raises:
        DeployDependencyError: openvino is not installed.
    """

    backend = 'openvino'

    def __init__(self, model: Union[str, bytes],
                 num_threads: Optional[int] = None) -> None:
        ov = require('openvino', extra='openvino', packages='openvino')
        core = ov.Core()
        if isinstance(model, bytes):
            with tempfile.TemporaryDirectory() as tmp:
                path = osp.join(tmp, 'model.onnx')
                with open(path, 'wb') as f:
                    f.write(model)
                network = core.read_model(path)
        else:
            if not osp.isfile(model):
                raise FileNotFoundError(f'No ONNX model at {model!r}.')
            network = core.read_model(os.fspath(model))
        self._compiled = core.compile_model(network, 'CPU', {
            'INFERENCE_PRECISION_HINT': 'f32',
            'INFERENCE_NUM_THREADS': _default_threads(num_threads),
        })
        self._inputs = list(self._compiled.inputs)
        self._outputs = list(self._compiled.outputs)
        self.input_names = [p.get_any_name() for p in self._inputs]
        self.output_names = [p.get_any_name() for p in self._outputs]
        self._request = self._compiled.create_infer_request()

    def __call__(self, *arrays: np.ndarray) -> List[np.ndarray]:
        self._check_arity(arrays)
        feeds = {port: np.ascontiguousarray(array)
                 for port, array in zip(self._inputs, arrays)}
        results = self._request.infer(feeds)
        return [np.array(results[port]) for port in self._outputs]
