"""Small torch helpers the layers share: precision and graph recording.

Leaf utilities: this module imports torch and :mod:`.torch_compat` only.
"""
import contextlib
from typing import Iterator

import torch

from .torch_compat import is_compiling


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Disable every active autocast (CPU, CUDA, ...) inside the block.

    Kernel compositions and folds run in the parameters' own dtype under
    it; ``F.conv2d`` outside still follows autocast.

    Example:
        >>> import torch
        >>> with torch.autocast('cpu', dtype=torch.bfloat16):
        ...     with full_precision():
        ...         y = torch.ones(2, 2) @ torch.ones(2, 2)
        >>> y.dtype
        torch.float32
    """
    legacy = {'cpu': getattr(torch, 'is_autocast_cpu_enabled', None),
              'cuda': torch.is_autocast_enabled}
    with contextlib.ExitStack() as stack:
        for device_type in ('cpu', 'cuda', 'xpu', 'mps'):
            try:
                enabled = torch.is_autocast_enabled(device_type)
            except TypeError:  # torch < 2.4: no device_type argument
                query = legacy.get(device_type)
                enabled = bool(query and query())
            except RuntimeError:  # a device type this build lacks
                continue
            if enabled:
                stack.enter_context(
                    torch.autocast(device_type=device_type, enabled=False))
        yield


def is_exporting() -> bool:
    """True while a graph is recorded: ``torch.jit.trace``,
    ``torch.onnx.export`` (either exporter), ``torch.export`` and
    ``torch.compile``.

    Layers then take their trace-safe computation (no Python-side caches,
    no custom autograd functions, no batch size baked into the graph).
    """
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or is_compiling())


def records_portable_graph() -> bool:
    """True while a graph is recorded to be run elsewhere, at other input
    sizes: ``torch.jit.trace``, ``torch.onnx.export`` (either exporter) and
    ``torch.export``; not ``torch.compile``, whose graphs are guarded on the
    sizes they specialise on (a new batch size recompiles).

    Layers then keep sizes such as the batch out of the graph. On a torch
    without ``torch.compiler.is_exporting`` (e.g. 2.1) ``torch.export``
    cannot be told from ``torch.compile``, so every dynamo trace counts.
    """
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return True
    exporting = getattr(torch.compiler, 'is_exporting', None)
    if exporting is None:
        return is_compiling()
    return exporting()
