"""CondConv's two exact paths and the rule that picks one
(:mod:`mmconvplug.convs.cond_conv`).

Both compute ``y_n = conv(x_n, K_n) + b_n`` for a batch whose examples have
their own kernels ``K_n`` (N, C_out, C_in / groups, kh, kw):

``grouped`` (:func:`cond_conv_grouped`)
    timm's formulation: the batch folded into channels and one grouped
    conv with a group per example.
``unfold`` (:func:`cond_conv_unfold`)
    each example's patches (``F.unfold``) times its own kernel, one batched
    matrix product for the whole batch (per group). No kernel reorder per
    call; an extra pass over k*k times the input. Batch-size agnostic, so
    also the traced/exported computation.

Each is checked against the float64 per-example formula in
``tests/convs/test_cond_conv.py``.

Both start from the same per-example kernels ``K_n = sum_e r_ne W_e``
(:func:`mix_experts`): on CPU in float32/float64 the fused kernels of
:mod:`.cpu_kernels` compute them, and their backward, in one pass over the
experts each way.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from mmconvplug.utils.torch_helpers import is_exporting, records_portable_graph

from . import cpu_kernels
from .attributes import IntOrPair

#: Strategy names accepted by ``CondConv(strategy=...)``.
COND_CONV_STRATEGIES = ('auto', 'unfold', 'grouped')

#: Strategy names that were removed, and what to pass instead.
REMOVED_COND_CONV_STRATEGIES = {
    'per_example': ('grouped', 'cond_conv_per_example'),
    'mix_outputs': ('auto', 'cond_conv_mix_outputs'),
}

#: :func:`choose_strategy` takes ``unfold`` when a group's output channels
#: are at least this many times the output positions per example.
#: Where measured: CPU, one thread, batch 8, train step (forward + backward);
#: the table in :func:`choose_strategy` (machine not recorded). Re-checked
#: 2026-12-02 on the project's dev machine (AMD EPYC, 2 cores, torch
#: 2.13.0+cpu), unfold / grouped time: 0.56 at 512@7x7 (C_out/L 10.4), 1.79
#: at 256@14x14 (1.3), 0.94-1.00 for the 1x1 1024@10x10 (10.2). Command:
#: ``mmconvplug benchmark layers --shapes condconv --threads 1 --cpu-time
#: --variants CondConv-grouped CondConv-unfold`` (train column).
UNFOLD_MIN_CHANNELS_PER_POSITION = 4.0


#: :func:`mix_experts` runs the fused CPU kernels from this many entries per
#: expert kernel (K = C_out * C_in / groups * kh * kw; a 512 x 512 1x1 conv
#: and up) and with more than one thread. Measured (2026-12-04, 2-core AMD
#: EPYC, torch 2.13, cold caches; fused / ``mm`` time, forward + backward,
#: N examples, E experts): 2 threads, 0.55-0.97 at K = 2**18 and up for N
#: = 2-16 and E = 4-8, but up to 1.14 at K = 36864; 1 thread, 0.9-1.27
#: (MKL's one-thread GEMM is as fast: the fused kernels win by sharing the
#: columns out among the threads, which MKL does poorly for these shapes).
FUSED_MIN_KERNEL_NUMEL = 2**18
#: ... and from this many intra-op threads (``torch.get_num_threads()``).
FUSED_MIN_THREADS = 2


class _MixExperts(torch.autograd.Function):
    """``K = r @ W`` (routing (N, E), experts (E, K)) through the fused CPU
    kernels: the forward reads ``W`` once and writes ``K`` once, a block of
    columns at a time; the backward makes one pass over ``W`` and the
    incoming gradient for both gradients, ``r^T G`` and ``G W^T``. On 2
    threads MKL's GEMM with an inner size of E (4-32) runs at about half
    the memory bandwidth, and the two backward products read ``G`` and
    ``W`` apart.
    """

    @staticmethod
    def forward(ctx, routing: torch.Tensor,
                experts: torch.Tensor) -> torch.Tensor:
        routing, experts = routing.contiguous(), experts.contiguous()
        ctx.save_for_backward(routing, experts)
        return cpu_kernels.load_kernels().expert_mix_forward(routing, experts)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        routing, experts = ctx.saved_tensors
        grad_experts, grad_routing = (
            cpu_kernels.load_kernels().expert_mix_backward(
                grad.to(experts.dtype).contiguous(), routing, experts,
                ctx.needs_input_grad[1], ctx.needs_input_grad[0]))
        return grad_routing, grad_experts


def mix_experts(routing: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """CondConv's per-example kernels ``K_n = sum_e r_ne W_e``, flattened.

    On CPU, with ``routing`` and ``experts`` both float32 or both float64,
    expert kernels of at least :data:`FUSED_MIN_KERNEL_NUMEL` entries and
    at least :data:`FUSED_MIN_THREADS` intra-op threads, the fused kernels
    of :mod:`.cpu_kernels` compute it (``MMCONVPLUG_CPU_KERNELS=0`` turns
    them off); otherwise, and while a graph is recorded (tracing, ONNX
    export, ``torch.compile``), ``routing @ experts`` (also under autocast,
    whose dtypes differ). The two compute the same sums.

    Args:
        routing (Tensor): ``r``, shape (N, E).
        experts (Tensor): The expert kernels flattened, shape (E, K).

    Returns:
        Tensor: shape (N, K).
    """
    # Sizes are read only outside a recorded graph (a trace sees them as
    # tensors).
    if (not is_exporting() and experts.shape[1] >= FUSED_MIN_KERNEL_NUMEL
            and torch.get_num_threads() >= FUSED_MIN_THREADS
            and cpu_kernels.usable(routing, experts)):
        return _MixExperts.apply(routing, experts)
    return routing @ experts


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if CondConv accepts it.

    Raises:
        ValueError: an unknown or removed strategy; for a removed one the
            message names the replacement.
    """
    if strategy in REMOVED_COND_CONV_STRATEGIES:
        replacement, baseline = REMOVED_COND_CONV_STRATEGIES[strategy]
        raise ValueError(
            f'CondConv: strategy={strategy!r} was removed; pass '
            f'{replacement!r} (the same function). The formulation is a '
            f'benchmark baseline now: mmconvplug.benchmarks.baselines.'
            f'{baseline} (mmconvplug benchmark layers --variants '
            f'CondConv-{strategy}).')
    if strategy not in COND_CONV_STRATEGIES:
        raise ValueError(
            f'CondConv: strategy={strategy!r} is not one of '
            f'{COND_CONV_STRATEGIES}; use "auto" to pick per shape.')
    return strategy


def conv_output_size(size: Sequence[int], kernel_size: Sequence[int],
                     stride: Sequence[int], padding: Sequence[int],
                     dilation: Sequence[int]) -> Tuple[int, int]:
    """``(H_out, W_out)`` of a conv on an input of spatial ``size``."""
    out_h, out_w = ((side + 2 * p - d * (k - 1) - 1) // s + 1
                    for side, k, s, p, d in zip(size, kernel_size, stride,
                                                padding, dilation))
    return out_h, out_w


def cond_conv_grouped(x: torch.Tensor, kernels: torch.Tensor,
                      bias: Optional[torch.Tensor], stride: IntOrPair,
                      padding: IntOrPair, dilation: IntOrPair,
                      groups: int) -> torch.Tensor:
    """``y_n = conv(x_n, K_n) + b_n`` as one grouped conv (timm's way).

    Args:
        x (Tensor): Input, shape (N, C_in, H, W), N >= 1.
        kernels (Tensor): Per-example kernels K_n, shape
            (N, C_out, C_in / groups, kh, kw).
        bias (Tensor, optional): Per-example biases, shape (N, C_out).
        stride, padding, dilation: As for ``F.conv2d``.
        groups (int): Groups of each example's conv.

    Returns:
        Tensor: shape (N, C_out, H_out, W_out).
    """
    batch, channels, height, width = x.shape
    out_channels = kernels.shape[1]
    out = F.conv2d(
        x.reshape(1, batch * channels, height, width),
        kernels.reshape(batch * out_channels, *kernels.shape[2:]),
        bias.reshape(-1) if bias is not None else None, stride, padding,
        dilation, groups * batch)
    return out.view(batch, out_channels, *out.shape[2:])


def cond_conv_unfold(x: torch.Tensor,
                     kernels: torch.Tensor,
                     bias: Optional[torch.Tensor],
                     stride: Tuple[int, int],
                     padding: Tuple[int, int],
                     dilation: Tuple[int, int],
                     groups: int,
                     kernel_size: Optional[Tuple[int, int]] = None
                     ) -> torch.Tensor:
    """``y_n = K_n @ unfold(x_n) + b_n`` for all ``n`` in one batched
    matmul (per group: ``(C_out/g, C_in/g*kh*kw) @ (C_in/g*kh*kw, L)``).

    Batch-size agnostic (traces and exports for any N, N = 0 included).

    Args:
        x (Tensor): Input, shape (N, C_in, H, W).
        kernels (Tensor): Per-example kernels, shape
            (N, C_out, C_in / groups, kh, kw).
        bias (Tensor, optional): Per-example biases, shape (N, C_out).
        stride, padding, dilation (tuple[int, int]): As for ``F.conv2d``.
        groups (int): Groups of each example's conv.
        kernel_size (tuple[int, int], optional): (kh, kw) as Python ints
            (a layer passes its own, so that a trace does not branch on
            tensor sizes). Defaults to None: read off ``kernels``.

    Returns:
        Tensor: shape (N, C_out, H_out, W_out).
    """
    out_channels = kernels.shape[1]
    kernel_size = tuple(kernels.shape[3:] if kernel_size is None else
                        kernel_size)
    out_h, out_w = conv_output_size(x.shape[2:], kernel_size, stride, padding,
                                    dilation)
    if (kernel_size == (1, 1) and tuple(padding) == (0, 0)
            and tuple(dilation) == (1, 1)):
        if tuple(stride) != (1, 1):
            x = x[:, :, ::stride[0], ::stride[1]]
        columns = x.flatten(2)
    else:
        columns = F.unfold(x, kernel_size, dilation, padding, stride)
    taps_per_group = columns.shape[1] // groups  # C_in / groups * kh * kw
    out = torch.matmul(
        kernels.reshape(-1, groups, out_channels // groups, taps_per_group),
        columns.reshape(-1, groups, taps_per_group, columns.shape[-1]))
    out = out.reshape(-1, out_channels, out_h, out_w)
    if bias is not None:
        out = out + bias[:, :, None, None]
    return out


def choose_strategy(x: torch.Tensor,
                    out_channels: int,
                    groups: int,
                    output_positions: int,
                    strategy: str = 'auto') -> str:
    """The path a CondConv with ``strategy`` takes for input ``x``.

    ``'unfold'`` is taken as given, ``'grouped'`` too except while tracing
    or exporting and on an empty batch (then ``unfold``, the same result);
    ``'auto'`` follows this rule:

    * tracing, ONNX export or ``torch.export``
      (:func:`~mmconvplug.utils.torch_helpers.records_portable_graph`), or
      an empty batch: ``unfold`` (batch-size agnostic; no conv has zero
      groups). Under ``torch.compile`` the rule below applies as in eager
      (its graphs are guarded on the batch size): ``unfold`` everywhere
      cost the compiled CondConv-MobileNetV1 SSD300 1.64x its eager step,
      ``unfold`` being 8-23x a plain conv at the depthwise convs;
    * ``unfold`` when a group's output channels are at least
      :data:`UNFOLD_MIN_CHANNELS_PER_POSITION` times the output
      positions per example (deep layers on small maps: 512 channels
      at 7x7, 1024 at 10x10), else ``grouped`` (at batch 1 a plain
      conv).

    Why: both paths read and write the ``N`` mixed kernels (N * C_out
    * C_in/groups * kh*kw values), and ``grouped`` first reorders the
    whole grouped kernel into the conv library's blocked layout.
    ``unfold`` skips the reorder and the grouped conv's per-group
    scheduling but writes k*k copies of the input (N * C_in * kh*kw * L
    values for L output positions). The kernel term dominates the input
    term when C_out/groups >> L. Measured in one process (CPU, one
    thread, batch 8, 3x3, train step; ratios of ``unfold`` to
    ``grouped``): 0.68 at 512 channels 7x7 (C_out/L = 10.4), 0.7-1.0 at
    C_out/L ~ 5 (256@7x7, 512@10x10, 1024@14x14, 128@5x5), 1.0-1.2 at
    C_out/L ~ 2.6-2.8 (512@14x14, 256@10x10, 1024@19x19) and 1.3-2.5
    below (256@14x14 ... 64@56x56); for 1x1 convs 0.9-0.95 at C_out/L ~
    10 (1024@10x10). Hence the threshold 4. In the same runs one conv
    per example was never clearly faster than ``grouped`` at batch 8 on
    maps of 7x7 and more, and convolving with the E experts stacked
    then mixing the outputs won on some maps of at most 5x5 and lost on
    others; both are baselines in :mod:`mmconvplug.benchmarks.baselines`.

    Args:
        x (Tensor): The layer's input, shape (N, C_in, H, W).
        out_channels (int): C_out.
        groups (int): The conv's groups.
        output_positions (int): L = H_out * W_out.
        strategy (str): The layer's ``strategy``. Defaults to ``'auto'``.

    Returns:
        str: ``'unfold'`` or ``'grouped'``.

    Raises:
        ValueError: an unknown or removed ``strategy``.
    """
    if check_strategy(strategy) == 'unfold' or records_portable_graph() or (
            x.shape[0] == 0):
        return 'unfold'
    if strategy == 'grouped':
        return 'grouped'
    channels_per_position = (out_channels / groups) / output_positions
    if (x.shape[0] > 1
            and channels_per_position >= UNFOLD_MIN_CHANNELS_PER_POSITION):
        return 'unfold'
    return 'grouped'
