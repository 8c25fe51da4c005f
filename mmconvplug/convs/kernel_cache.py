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
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import nn

from .base import full_precision, is_exporting

CacheKey = Tuple[Tuple[int, int, torch.dtype, torch.device], ...]


class KernelCache(nn.Module):
    """Holds one composed kernel while its sources stay unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel: Optional[torch.Tensor] = None
        self.key: Optional[CacheKey] = None

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
        if self.kernel is None or key != self.key:
            with torch.no_grad(), full_precision():
                # detach: the kernel may be the weight Parameter itself.
                self.kernel = compose().detach()
            self.key = key
        return self.kernel

    def clear(self) -> None:
        """Drop the cached kernel; the next eval forward recomposes it."""
        self.kernel = None
        self.key = None

    def train(self, mode: bool = True) -> 'KernelCache':
        self.clear()
        return super().train(mode)

    def _apply(self, *args, **kwargs):
        self.clear()
        return super()._apply(*args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear()
        super()._load_from_state_dict(*args, **kwargs)
