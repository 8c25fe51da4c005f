"""Fused CPU kernels for DO-Conv's kernel composition, RefConv's refocusing
and CondConv's expert mixing (``csrc/compose_kernels.cpp``), compiled on
first use.

The compositions do a few multiply-adds per kernel entry (a 3x3 DO-Conv:
9 forward, 18 backward; CondConv: E per example), so for kernels larger
than the CPU's caches they cost what their memory traffic costs. The eager
formulations (:mod:`.do_conv_ops`: batched matmuls with 9-wide operands and
a layout copy per pass; :mod:`.ref_conv_ops`: a depthwise conv over C_out *
C_in 3x3 images; :mod:`.cond_conv_ops`: GEMMs with an inner size of E, which
MKL runs at about half the memory bandwidth) make several passes over
kernel-sized tensors, or run below the bandwidth, where one pass suffices;
these kernels make one pass each way. Measured at a 1024 x 1024 3x3 layer,
2 threads (2026-12-04, AVX2 build): DO-Conv's composition forward +
backward 34-37 ms against 128-131 ms eager, RefConv's refocusing 34-37 ms
against 104-112 ms (``tools/benchmark.py layers --shapes composition``:
docs/benchmarks.md).

When they run: on CPU tensors of float32 or float64, while training or
composing an eval kernel, never while a graph is recorded (tracing, ONNX
export, ``torch.compile``:
``mmconvplug.utils.torch_helpers.is_exporting``); for DO-Conv from
:data:`~mmconvplug.convs.do_conv_ops.FUSED_MIN_KERNEL_NUMEL` kernel entries
(none with the AVX2 build; 2**19 with the baseline build, below which MKL's
``bmm`` is as fast), for RefConv only when
each refocusing group holds one basis kernel (the official default for a
dense conv) and the basis is frozen, for CondConv from
:data:`~mmconvplug.convs.cond_conv_ops.FUSED_MIN_KERNEL_NUMEL` entries per
expert kernel, with more than one thread (MKL's one-thread GEMM is as
fast) and the routing weights in the experts' dtype (not under autocast).
Everything else (CUDA, half precision, grouped refocusing maps) takes the
eager ops, which compute the same values: the tests hold the two paths
equal in float64.

Instruction set: on an x86-64 CPU where ATen runs its AVX2 kernels the
module is built with AVX2 and FMA (:func:`simd_flags`), else for the
compiler's baseline; the module's name tells the two builds apart.

Control: the environment variable :data:`ENV_VAR`
(``MMCONVPLUG_CPU_KERNELS``). Unset or ``1``: use them, compiling on first
use. ``0``: never (the eager ops). Inside ``with eager_ops():`` the calling
thread uses the eager ops (the benchmark's ``<variant>-eager`` rows). The
compiled module lives in torch's extension cache (``TORCH_EXTENSIONS_DIR``,
default ``~/.cache/torch_extensions``) under a name that carries the torch
version, so each environment builds its own once (about 30 s;
``scripts/setup.sh`` does it ahead of time). Building needs a C++17
compiler and ``ninja`` (a dependency; found beside the interpreter when
not on PATH). A failed build warns once,
naming the error and the fix, and the layers use the eager ops.

Threads: the kernels split work with ``at::parallel_for`` over torch's
intra-op threads. Results are deterministic for a given thread count:
every output element is summed by one thread in a fixed order (DO-Conv's
``D`` gradient adds per-chunk partial sums in chunk order).
"""
import contextlib
import os
import platform
import re
import shutil
import sys
import threading
import warnings
from typing import Iterator, List, Optional

import torch

from mmconvplug.utils.torch_helpers import is_exporting

#: The environment variable that turns the kernels off (``0``).
ENV_VAR = 'MMCONVPLUG_CPU_KERNELS'

#: The C++ source, shipped in the package.
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'csrc',
                      'compose_kernels.cpp')

_FLOATING = (torch.float32, torch.float64)
_OFF_VALUES = ('0', 'false', 'off', 'no')


class _State:
    """The loaded module, or why it did not load (once per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tried = False
        self.module = None
        self.error: Optional[str] = None


_STATE = _State()
_LOCAL = threading.local()  # .eager: inside eager_ops() on this thread


def simd_flags() -> List[str]:
    """Compiler flags for this CPU's vector units: ``-mavx2 -mfma`` on an
    x86-64 CPU whose ATen capability is AVX2 or AVX-512 (ATen requires FMA
    for AVX2; ``ATEN_CPU_CAPABILITY=default`` turns both off), else none
    (SSE2 on x86-64, the compiler's default elsewhere).

    The kernels' inner loops are short (9 taps, E experts), so with SSE2
    alone and no fused multiply-add they are bound by arithmetic, not by
    memory, at kernels that fit in cache.
    """
    if platform.machine().lower() not in ('x86_64', 'amd64'):
        return []
    get_capability = getattr(torch.backends.cpu, 'get_cpu_capability', None)
    capability = get_capability() if get_capability is not None else ''
    return ['-mavx2', '-mfma'] if capability in ('AVX2', 'AVX512') else []


def extension_name() -> str:
    """The compiled module's name: one per torch version (its ABI) and
    instruction set (:func:`simd_flags`; a cache shared by machines of
    different CPUs keeps one build for each)."""
    tag = re.sub(r'[^0-9A-Za-z]+', '_', torch.__version__)
    simd = '_avx2' if simd_flags() else ''
    return f'mmconvplug_compose_kernels_torch{tag}{simd}'


def _environment_allows() -> bool:
    return os.environ.get(ENV_VAR, '1').strip().lower() not in _OFF_VALUES


# Never traced: torch 2.1's dynamo fails with an internal error on
# ``os.environ`` (a layer's autograd function asks this while dynamo
# traces it there; newer torch sees ``is_compiling()`` first).
_environment_allows = torch.compiler.disable(_environment_allows)


def kernels_enabled() -> bool:
    """False when :data:`ENV_VAR` is ``0`` (or false/off/no), and inside
    :func:`eager_ops` on the calling thread."""
    if getattr(_LOCAL, 'eager', False):
        return False
    return _environment_allows()


@contextlib.contextmanager
def eager_ops() -> Iterator[None]:
    """Within the block, this thread's compositions use the eager ops.

    The path is chosen in the forward, so a backward run after the block
    follows the forward's path.

    Example:
        >>> import torch
        >>> with eager_ops():
        ...     usable(torch.zeros(1))
        False
    """
    before = getattr(_LOCAL, 'eager', False)
    _LOCAL.eager = True
    try:
        yield
    finally:
        _LOCAL.eager = before


def _ninja_dir() -> Optional[str]:
    """Where ``ninja`` is when it is not on PATH: the ``ninja`` package's
    (a dependency), or beside the interpreter (a venv run without
    activating it, as ``.venv/bin/python -m pytest``)."""
    try:
        import ninja
        candidates = [getattr(ninja, 'BIN_DIR', None)]
    except ImportError:
        candidates = []
    candidates.append(os.path.dirname(sys.executable))
    for folder in candidates:
        if folder and os.path.isfile(os.path.join(folder, 'ninja')):
            return folder
    return None


@contextlib.contextmanager
def _ninja_on_path() -> Iterator[None]:
    """torch's extension builder runs ``ninja`` from PATH: add its folder
    for the build when PATH lacks it."""
    folder = None if shutil.which('ninja') else _ninja_dir()
    if folder is None:
        yield
        return
    before = os.environ.get('PATH')
    os.environ['PATH'] = os.pathsep.join(p for p in (folder, before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop('PATH', None)
        else:
            os.environ['PATH'] = before


def _build():
    from torch.utils.cpp_extension import load

    # at::parallel_for's OpenMP implementation is inline in ATen's headers:
    # without -fopenmp the kernels would run on one thread.
    openmp = [] if sys.platform == 'darwin' else ['-fopenmp']
    with _ninja_on_path():
        return load(name=extension_name(), sources=[SOURCE],
                    extra_cflags=['-O3'] + simd_flags() + openmp,
                    extra_ldflags=openmp, verbose=False)


def load_kernels(raise_error: bool = False):
    """The compiled module, building it on the first call of a process.

    Args:
        raise_error (bool): Raise the build's error instead of warning and
            returning None. Default: False.

    Returns:
        module | None: the extension, or None when it is turned off
        (:data:`ENV_VAR`) or did not build (the reason is in
        :func:`kernels_status`).

    Raises:
        RuntimeError: with ``raise_error``, the build failed; the message
            holds the compiler's error and the fix.
    """
    if not kernels_enabled():
        return None
    if not _STATE.tried:
        with _STATE.lock:
            if not _STATE.tried:
                try:
                    _STATE.module = _build()
                except Exception as error:  # compiler, ninja, headers...
                    _STATE.error = _build_error_message(error)
                    warnings.warn(_STATE.error, RuntimeWarning, stacklevel=2)
                _STATE.tried = True
    if _STATE.module is None and raise_error:
        raise RuntimeError(_STATE.error)
    return _STATE.module


def _build_error_message(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines if 'error' in line.lower()),
                  lines[0] if lines else type(error).__name__)
    return (f'mmconvplug: the fused CPU kernels for DO-Conv/RefConv did not '
            f'build ({type(error).__name__}: {detail.strip()}); the layers '
            f'use their eager ops instead (same results, slower training '
            f'on CPU). Fix: install a C++17 compiler and ninja '
            f'(`pip install ninja`), then restart; or set {ENV_VAR}=0 to '
            f'skip the kernels without this warning.')


def kernels_status() -> str:
    """One line for ``mmconvplug info``: built, off, not built yet, or the
    build's error."""
    if not kernels_enabled():
        return f'off ({ENV_VAR}=0)'
    if not _STATE.tried:
        return 'not loaded yet (compiled on first use)'
    if _STATE.module is not None:
        return f'loaded ({extension_name()})'
    return f'unavailable: {_STATE.error}'


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the kernels take these operands: kernels on and built, no
    graph being recorded, every tensor on CPU in one of float32/float64.
    """
    if is_exporting() or not kernels_enabled():
        return False
    dtype = tensors[0].dtype
    if dtype not in _FLOATING or any(
            t.device.type != 'cpu' or t.dtype != dtype for t in tensors):
        return False
    return load_kernels() is not None
