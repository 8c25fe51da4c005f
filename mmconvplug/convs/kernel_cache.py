"""Cache the composed kernel of a re-parameterised conv outside training.

DO-Conv and RefConv compute their conv kernel from several tensors on every
forward pass. While training that composition must run each step (autograd
needs its graph), but in evaluation the inputs do not change between calls,
so composing once and reusing the kernel makes an unfolded layer cost the
same as a plain ``nn.Conv2d``.

The cache is keyed on the identity (storage pointer, dtype, device) and the
autograd version counter of every tensor the kernel is composed from, so an
optimizer step, ``load_state_dict`` or ``.to()`` invalidates it. It is also
cleared on ``train()``/``eval()``, ``load_state_dict`` and ``_apply``.
In-place writes through ``tensor.data`` bypass PyTorch's version counter; code
that writes weights that way while the layer stays in eval mode (e.g. a
hand-written EMA) must call :meth:`KernelCacheMixin.clear_kernel_cache`
or toggle ``train()``/``eval()``, as mmengine's loops do before each
validation.
"""
from abc import abstractmethod
from typing import Iterable, Optional, Tuple

import torch
import torch.nn.functional as F

CacheKey = Tuple[Tuple[int, int, torch.dtype, torch.device], ...]


class KernelCacheMixin:
    """Adds :meth:`composed_kernel`, which caches outside training.

    A subclass (also an ``nn.Module`` with the conv attributes and ``bias``)
    implements :meth:`_compose_kernel` and :meth:`_kernel_sources`; it then
    gets :meth:`forward` (a plain conv with the composed kernel) and
    :meth:`folded_weight_and_bias` (that kernel, for ``fold()``).
    """

    _kernel_cache: Optional[torch.Tensor] = None
    _kernel_cache_key: Optional[CacheKey] = None

    @abstractmethod
    def _compose_kernel(self) -> torch.Tensor:
        """Compose the conv kernel ``(out, in // groups, kh, kw)``."""

    @abstractmethod
    def _kernel_sources(self) -> Iterable[torch.Tensor]:
        """Every parameter and buffer the kernel is composed from."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.composed_kernel(), self.bias, self.stride,
                        self.padding, self.dilation, self.groups)

    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        with torch.no_grad():
            weight = self._compose_kernel().detach().clone()
            bias = None if self.bias is None else self.bias.detach().clone()
        return weight, bias

    def composed_kernel(self) -> torch.Tensor:
        """The conv kernel; reused between calls when no graph is needed.

        The cache is used only in eval mode and only when autograd would not
        need the composition's graph (grad disabled, or no source requires
        grad), so gradients are never silently cut; not under
        ``torch.inference_mode`` (use ``torch.no_grad``, as mmengine's
        val/test loops do).
        """
        sources = tuple(self._kernel_sources())
        needs_graph = torch.is_grad_enabled() and any(
            t.requires_grad for t in sources)
        if self.training or needs_graph:
            self.clear_kernel_cache()
            return self._compose_kernel()
        if torch.is_inference_mode_enabled():
            # An inference tensor cached here would break a later forward
            # that records autograd; inference mode just composes.
            return self._compose_kernel()
        key = tuple(
            (t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        if self._kernel_cache is None or key != self._kernel_cache_key:
            with torch.no_grad():
                # detach: a plain kernel may be the weight Parameter itself,
                # which nn.Module would otherwise register under this name.
                self._kernel_cache = self._compose_kernel().detach()
            self._kernel_cache_key = key
        return self._kernel_cache

    def clear_kernel_cache(self) -> None:
        """Drop the cached kernel; the next eval forward recomposes it."""
        self._kernel_cache = None
        self._kernel_cache_key = None

    def train(self, mode: bool = True):
        self.clear_kernel_cache()
        return super().train(mode)

    def _apply(self, *args, **kwargs):
        self.clear_kernel_cache()
        return super()._apply(*args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear_kernel_cache()
        super()._load_from_state_dict(*args, **kwargs)
