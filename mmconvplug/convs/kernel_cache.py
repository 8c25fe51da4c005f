"""A cache for the composed kernel of a re-parameterised conv in eval mode.

DO-Conv and RefConv compute their conv kernel from several tensors on every
forward. While training the composition must run each step (autograd needs
its graph); in evaluation its inputs do not change between calls, so the
layer composes once and reuses the kernel, costing what a plain
``nn.Conv2d`` costs. The layer owns a :class:`KernelCache` submodule and
calls :meth:`KernelCache.get` from its ``forward``. Being a submodule (with
no parameters, buffers or state-dict keys), the cache is cleared by the
layer's ``train()``/``eval()``, ``.to()``/``.half()``/... and
``load_state_dict`` without the layer overriding them.

The cached kernel is keyed on the storage pointer, dtype, device and
autograd version counter of every source tensor, so an optimizer step,
``load_state_dict``, ``.to()`` or any in-place update through the tensor
invalidates it, and the calls above clear it. Writes
through ``tensor.data`` bypass the version counter: code that writes weights
that way while the layer stays in eval mode must call
:meth:`KernelCache.clear` (or toggle ``train()``/``eval()``, as mmengine's
loops do before each validation). The kernel is composed with autocast off,
so it is always in the parameters' dtype: an autocast forward never leaves a
low-precision kernel behind for a later full-precision one.

Threads: one eval model may serve several threads at once (``no_grad`` in
one, ``inference_mode`` in another, which clears the cache). The kernel and
its key are stored as one tuple and replaced in one assignment, and each
forward returns the kernel it read or composed itself, so a concurrent
clear or refill never hands a forward ``None`` or a kernel of other weights.
Two threads may both compose on a miss; the later one's entry stays.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import nn

from mmconvplug.utils.torch_helpers import full_precision, is_exporting

CacheKey = Tuple[Tuple[int, int, torch.dtype, torch.device], ...]


class KernelCache(nn.Module):
    """Holds one composed kernel while its sources stay unchanged."""

    def __init__(self) -> None:
        super().__init__()
        # The kernel and its key as one tuple, replaced (never mutated) in
        # one assignment, so a reader sees either a whole entry or None.
        self._entry: Optional[Tuple[torch.Tensor, CacheKey]] = None

    def get(self, compose: Callable[[], torch.Tensor],
            sources: Sequence[torch.Tensor], training: bool) -> torch.Tensor:
        """``compose()`` (in full precision), reused when that is safe.

        Reused only in eval mode when autograd needs no graph (grad off, or
        no source requires grad), outside ``torch.inference_mode`` and
        outside tracing/ONNX export (the composition is then recorded).
        """
        needs_graph = torch.is_grad_enabled() and any(
            t.requires_grad for t in sources)
        if (training or needs_graph or torch.is_inference_mode_enabled()
                or is_exporting()):
            self.clear()
            with full_precision():
                return compose()
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device)
                    for t in sources)
        # One read of the (kernel, key) pair and one local kernel: another
        # thread may clear or refill the cache between any two statements
        # here (a served model, no_grad in one thread and inference_mode in
        # another), so the forward returns the kernel it read or composed,
        # never a second read of ``self.kernel``.
        cached = self._entry
        if cached is not None and cached[1] == key:
            return cached[0]
        with torch.no_grad(), full_precision():
            # detach: the kernel may be the weight Parameter itself.
            kernel = compose().detach()
        self._entry = (kernel, key)
        return kernel

    @property
    def kernel(self) -> Optional[torch.Tensor]:
        """The cached kernel, or None."""
        entry = self._entry
        return None if entry is None else entry[0]

    @property
    def key(self) -> Optional[CacheKey]:
        """What the cached kernel was composed from, or None."""
        entry = self._entry
        return None if entry is None else entry[1]

    def clear(self) -> None:
        """Drop the cached kernel; the next eval forward recomposes it."""
        self._entry = None

    def train(self, mode: bool = True) -> 'KernelCache':
        self.clear()
        return super().train(mode)

    def _apply(self, *args, **kwargs):
        self.clear()
        return super()._apply(*args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear()
        super()._load_from_state_dict(*args, **kwargs)
