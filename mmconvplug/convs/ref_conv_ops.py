"""RefConv's maths: the refocusing transformation ``W_t = W_b + T(W_b)``
and the map's size and groups (:mod:`mmconvplug.convs.ref_conv`).

``T`` is a conv over the stack of the C_out * C_in / groups two-dimensional
basis kernels, seen as the channels of one (kh x kw) image: map size
``map_size`` (3 in the paper) with 'same' zero padding, ``map_groups`` (the
paper's ``G``) groups. The default ``G = C_in * C_out / groups**2`` is the
official code's, so each refocusing group mixes ``groups`` basis kernels:
for a depthwise conv (groups = C_in = C_out) that is G = 1, every kernel
refocuses on all the others; for a dense conv (groups = 1) G = C_out * C_in,
each kernel is refocused from its own neighbourhood only.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

from mmconvplug.utils.arg_checks import check_positive_int
from mmconvplug.utils.torch_helpers import full_precision

from . import cpu_kernels
from .attributes import IntOrPair

#: The paper's refocusing map size.
DEFAULT_MAP_SIZE = 3


class _RefocusOneKernelPerGroup(torch.autograd.Function):
    """``W_t = W_b + T(W_b)`` when each refocusing group holds one basis
    kernel (G = N), through the fused CPU kernels of :mod:`.cpu_kernels`:
    one pass over the basis and the map each way, where the eager depthwise
    conv over N (kh x kw) images makes several. The basis is frozen (no
    gradient); the map's gradient is the correlation of the kernel's
    gradient with the basis.
    """

    @staticmethod
    def forward(ctx, basis: torch.Tensor,
                refocus_weight: torch.Tensor) -> torch.Tensor:
        num_kernels = refocus_weight.shape[0]
        stack = basis.reshape(num_kernels, *basis.shape[-2:]).contiguous()
        maps = refocus_weight.reshape(num_kernels,
                                      *refocus_weight.shape[-2:])
        ctx.save_for_backward(stack)
        ctx.map_shape = refocus_weight.shape
        kernels = cpu_kernels.load_kernels()
        return kernels.refocus_forward(stack, maps.contiguous()).reshape(
            basis.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_kernel: torch.Tensor):
        stack, = ctx.saved_tensors
        map_h, map_w = ctx.map_shape[-2:]
        grad_map = cpu_kernels.load_kernels().refocus_backward(
            grad_kernel.to(stack.dtype).reshape(stack.shape).contiguous(),
            stack, map_h, map_w)
        return None, grad_map.reshape(ctx.map_shape)


def _fused_refocus_applies(basis: torch.Tensor, refocus_weight: torch.Tensor,
                           map_groups: int) -> bool:
    return (map_groups == refocus_weight.shape[0]
            and refocus_weight.shape[1] == 1 and not basis.requires_grad
            and cpu_kernels.usable(basis, refocus_weight))


def refocus_kernel(basis: torch.Tensor, refocus_weight: torch.Tensor,
                   map_groups: int) -> torch.Tensor:
    """``W_t = W_b + T(W_b)``: refocus a stack of basis kernels.

    Runs with autocast off, in the inputs' dtype. With one basis kernel per
    refocusing group (G = N, the official default for a dense conv), a
    frozen basis and CPU float32/float64 tensors, it runs the fused kernels
    of :mod:`.cpu_kernels` (``MMCONVPLUG_CPU_KERNELS=0`` turns them off);
    otherwise, and while a graph is recorded, ``F.conv2d``.

    Args:
        basis (Tensor): ``W_b``, shape (C_out, C_in / groups, kh, kw).
        refocus_weight (Tensor): the map of ``T``, shape
            (N, N / map_groups, mh, mw) with N = C_out * C_in / groups.
        map_groups (int): ``G``, the number of groups of ``T``.

    Returns:
        Tensor: ``W_t``, shaped like ``basis``.

    Example:
        >>> import torch
        >>> basis = torch.randn(4, 2, 3, 3)
        >>> refocus_kernel(basis, torch.zeros(8, 1, 3, 3), 8).equal(basis)
        True
    """
    num_kernels = basis.shape[0] * basis.shape[1]
    map_h, map_w = refocus_weight.shape[-2:]
    if _fused_refocus_applies(basis, refocus_weight, map_groups):
        return _RefocusOneKernelPerGroup.apply(basis, refocus_weight)
    stack = basis.reshape(1, num_kernels, *basis.shape[-2:])
    with full_precision():
        refocused = F.conv2d(stack, refocus_weight, None, 1,
                             (map_h // 2, map_w // 2), 1, map_groups)
    return basis + refocused.reshape(basis.shape)


def refocus_map_size(kernel_size: Tuple[int, int],
                     map_size: Optional[IntOrPair]) -> Tuple[int, int]:
    """The refocusing map's size for a ``kernel_size`` kernel.

    Args:
        kernel_size (tuple[int, int]): The conv's (kh, kw).
        map_size (int | tuple[int, int], optional): Odd, at most the kernel
            size; None: :data:`DEFAULT_MAP_SIZE`, shrunk to the largest odd
            size that fits each kernel side.

    Returns:
        tuple[int, int]: (mh, mw).

    Raises:
        ValueError: an even, non-positive or too large ``map_size``.
    """
    if map_size is None:
        return tuple(
            min(DEFAULT_MAP_SIZE, side if side % 2 else side - 1)
            for side in kernel_size)
    size = _pair(map_size)
    for side, kernel_side in zip(size, kernel_size):
        check_positive_int(
            side, 'map_size', 'RefConv',
            hint='odd positive ints: the map is applied with same padding')
        if side % 2 == 0:
            raise ValueError(
                f'RefConv: map_size must be odd positive ints (the map '
                f'is applied with same padding), got {map_size!r}.')
        if side > kernel_side:
            raise ValueError(
                f'RefConv: map_size={size} is larger than '
                f'kernel_size={tuple(kernel_size)}; the map would only see '
                f'padding there. Use map_size <= the kernel size, or '
                f'map_size=None to fit it automatically.')
    return size


def refocus_map_groups(num_kernels: int, groups: int,
                       map_groups: Optional[int]) -> int:
    """``G``, the refocusing map's groups, for ``num_kernels`` basis kernels
    (C_out * C_in / groups) of a conv with ``groups`` groups.

    Args:
        num_kernels (int): N = C_out * C_in / groups.
        groups (int): The conv's groups.
        map_groups (int, optional): ``G``; must divide N. None: the
            official default C_in * C_out / groups**2 = N / groups.

    Returns:
        int: ``G``.

    Raises:
        ValueError: ``map_groups`` is not a positive int dividing N.
    """
    if map_groups is None:
        return num_kernels // groups
    try:
        check_positive_int(map_groups, 'map_groups', 'RefConv')
        divides = num_kernels % map_groups == 0
    except ValueError:
        divides = False
    if not divides:
        raise ValueError(
            f'RefConv: map_groups must be a positive int dividing the '
            f'number of basis kernels C_out * C_in / groups = '
            f'{num_kernels}, got {map_groups!r}. Use None for the '
            f'official default C_in * C_out / groups**2 = '
            f'{num_kernels // groups}.')
    return map_groups
