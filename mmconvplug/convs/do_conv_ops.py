"""DO-Conv's kernel composition: ``kernel = D o W``, batched over input
channels, with a hand-written backward (:mod:`mmconvplug.convs.do_conv`).

``kernel[o, c, s] = sum_d D[c_in(o, c), s, d] * W[o, c, d]``, where
``c_in(o, c)`` is the input channel that slot ``c`` of output ``o`` reads.
"""
import torch
from torch.autograd.function import once_differentiable

from mmconvplug.utils.torch_helpers import full_precision, is_exporting

from . import cpu_kernels

#: Kernels with fewer entries (C_out * C_in / groups * k*k) compose with the
#: eager ops even where the fused CPU kernels apply. With the kernels built
#: for AVX2 + FMA (:func:`~.cpu_kernels.simd_flags`) they win at every size
#: measured, so there is no threshold: the composition's forward + backward
#: of a dense 3x3 layer, fused / eager, 2 threads (2026-12-04, AMD EPYC):
#: 0.91 at 32 channels, 0.64 at 64, 0.45 at 128, 0.42 at 256. A baseline
#: (SSE2) build keeps 2**19 (a 256 x 256 3x3 conv and up), below which MKL's
#: batched matmul was as fast or faster: 0.23 vs 0.20 ms at 64 channels, 0.51
#: vs 0.51 ms at 128, 1.61 vs 1.85 ms at 256, 6.2 vs 7.9 ms at 512.
FUSED_MIN_KERNEL_NUMEL = 0 if cpu_kernels.simd_flags() else 2**19


def _by_input(tensor: torch.Tensor, groups: int) -> torch.Tensor:
    """(C_out, C_in/groups, width) -> (C_in, C_out/groups, width): slot
    ``[c, j]`` holds output ``j`` of input channel ``c``'s group.

    A strided view (no copy) for groups == 1 and whenever a group has one
    input or one output channel (depthwise); ``bmm`` reads such views in
    place.
    """
    out_channels, channels_per_group, width = tensor.shape
    outs_per_group = out_channels // groups
    return tensor.reshape(groups, outs_per_group, channels_per_group,
                          width).transpose(1, 2).reshape(
                              groups * channels_per_group, outs_per_group,
                              width)


def _to_conv_layout(by_input: torch.Tensor, groups: int) -> torch.Tensor:
    """(C_in, C_out/groups, width) -> (C_out, C_in/groups, width), one copy
    that keeps the innermost (tap) axis contiguous."""
    in_channels, outs_per_group, width = by_input.shape
    channels_per_group = in_channels // groups
    return by_input.reshape(groups, channels_per_group, outs_per_group,
                            width).transpose(1, 2).reshape(
                                groups * outs_per_group, channels_per_group,
                                width).contiguous()


class _ComposeOverParameterisedKernel(torch.autograd.Function):
    """``kernel[o, c, s] = sum_d D[c_in(o, c), s, d] * W[o, c, d]``.

    Per input channel ``c``: ``W_c D_c^T``, (C_out/groups x D_mul) @
    (D_mul x k*k), batched over input channels, ``W_c`` read in place
    through a strided view. That leaves one layout copy per pass: the
    kernel into the conv layout (forward), ``W``'s gradient (backward; the
    gradient of ``D`` is small and needs none). Measured against the
    earlier ``D_c W_c^T`` orientation, whose result needed two copies to
    reach the conv layout: 0.67x the composition's forward + backward at
    512 channels and 0.77x at 1024 (``tools/benchmark.py layers``,
    ``compose`` column). The backward is written out (one ``bmm`` per
    gradient) rather than left to autograd's chain of views and copies.

    On CPU in float32/float64, for kernels of at least
    :data:`FUSED_MIN_KERNEL_NUMEL` entries, both passes run the fused
    kernels of :mod:`.cpu_kernels` instead (one pass over ``W`` and the
    kernel each way), which compute the same sums.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, depthwise: torch.Tensor,
                groups: int) -> torch.Tensor:
        ctx.groups = groups
        kernel_numel = weight.shape[0] * weight.shape[1] * depthwise.shape[1]
        ctx.fused = (kernel_numel >= FUSED_MIN_KERNEL_NUMEL
                     and cpu_kernels.usable(weight, depthwise))
        if ctx.fused:
            weight, depthwise = weight.contiguous(), depthwise.contiguous()
            ctx.save_for_backward(weight, depthwise)
            return cpu_kernels.load_kernels().do_compose_forward(
                weight, depthwise, groups)
        ctx.save_for_backward(weight, depthwise)
        kernel_by_input = torch.bmm(_by_input(weight, groups),
                                    depthwise.transpose(1, 2))
        return _to_conv_layout(kernel_by_input, groups)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_kernel: torch.Tensor):
        weight, depthwise = ctx.saved_tensors
        groups = ctx.groups
        if ctx.fused and grad_kernel.device.type == 'cpu':
            grad_weight, grad_depthwise = (
                cpu_kernels.load_kernels().do_compose_backward(
                    grad_kernel.to(weight.dtype).contiguous(), weight,
                    depthwise, groups, ctx.needs_input_grad[0],
                    ctx.needs_input_grad[1]))
            return grad_weight, grad_depthwise, None
        grad_by_input = _by_input(grad_kernel, groups)  # (C_in, C_out/g, kk)
        grad_weight = grad_depthwise = None
        if ctx.needs_input_grad[0]:
            grad_weight = _to_conv_layout(
                torch.bmm(grad_by_input, depthwise), groups)
        if ctx.needs_input_grad[1]:
            grad_depthwise = torch.bmm(grad_by_input.transpose(1, 2),
                                       _by_input(weight, groups))
        return grad_weight, grad_depthwise, None


def compose_do_kernel(weight: torch.Tensor, depthwise: torch.Tensor,
                      groups: int) -> torch.Tensor:
    """Compose DO-Conv's kernel from ``W`` and ``D`` (functional form).

    Runs with autocast off, in the inputs' common dtype; while tracing or
    exporting to ONNX it records the same computation as plain tensor ops
    (``bmm``, ``reshape``, ``permute``: ONNX ``MatMul``, ``Reshape``,
    ``Transpose``, all in opset 11) instead of the custom autograd function.
    On CPU in float32/float64 it runs the fused kernels of
    :mod:`.cpu_kernels` for kernels of at least
    :data:`FUSED_MIN_KERNEL_NUMEL` entries (``MMCONVPLUG_CPU_KERNELS=0``
    turns them off).

    Args:
        weight (Tensor): ``W``, shape (C_out, C_in / groups, D_mul).
        depthwise (Tensor): ``D``, shape (C_in, k*k, D_mul), one matrix per
            input channel.
        groups (int): the conv's ``groups``.

    Returns:
        Tensor: the kernel, shape (C_out, C_in / groups, k*k).

    Example:
        >>> import torch
        >>> W, D = torch.randn(16, 8, 9), torch.randn(8, 9, 9)
        >>> compose_do_kernel(W, D, groups=1).shape
        torch.Size([16, 8, 9])
    """
    dtype = torch.promote_types(weight.dtype, depthwise.dtype)
    weight, depthwise = weight.to(dtype), depthwise.to(dtype)
    with full_precision():
        if is_exporting():
            # The autograd function's forward, recorded op by op.
            return _to_conv_layout(
                torch.bmm(_by_input(weight, groups),
                          depthwise.transpose(1, 2)), groups)
        return _ComposeOverParameterisedKernel.apply(weight, depthwise,
                                                     groups)
