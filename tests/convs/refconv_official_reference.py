"""The official RefConv kernel (``RepConv.forward`` of
github.com/Aiolus-X/RefConv), for tests that compare a RefConv model with
the stock model whose kernels are refocused the official way.

The official layer keeps the basis in a buffer ``weight`` and the map in an
``nn.Conv2d`` ``convmap`` (PyTorch's default init; its ``zeros_`` init is
commented out), ``G = C_in * C_out / groups**2`` groups, ``map_k // 2``
padding, and convolves with
``weight + convmap(weight.view(1, N, k, k)).view(weight.shape)``.
"""
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn


def official_refocused_kernel(weight: torch.Tensor,
                              convmap_weight: torch.Tensor,
                              map_groups: int) -> torch.Tensor:
    """``weight + convmap(weight.view(1, N, kh, kw)).view(weight.shape)``.

    Args:
        weight: the basis, (C_out, C_in / groups, kh, kw).
        convmap_weight: the map, (N, N / G, mh, mw), N = C_out * C_in /
            groups.
        map_groups: G.
    """
    num_kernels = weight.shape[0] * weight.shape[1]
    map_h, map_w = convmap_weight.shape[-2:]
    origin = weight.view(1, num_kernels, *weight.shape[-2:])
    return weight + F.conv2d(origin, convmap_weight, None, 1,
                             (map_h // 2, map_w // 2), 1,
                             map_groups).view(weight.shape)


def refocus_stock_kernels_officially(
        stock: nn.Module, ours: nn.Module,
        checkpoint: Optional[Mapping] = None) -> int:
    """Check every RefConv of ``ours`` and refocus ``stock`` to match it.

    For each RefConv: its basis equals the same-named conv's kernel of
    ``stock`` (and ``checkpoint[name + '.weight']`` when given); a
    refocusing one has the official ``G`` and a map at PyTorch's default
    conv init (uniform within 1 / sqrt(fan_in), not zero). That conv of
    ``stock`` then gets the official refocused kernel.

    Returns:
        int: the number of refocusing layers.
    """
    refocusing = 0
    for name, layer in ours.named_modules():
        if type(layer).__name__ != 'RefConv':
            continue
        plain = stock.get_submodule(name)
        if checkpoint is not None:
            assert torch.equal(layer.weight, checkpoint[f'{name}.weight'])
        assert torch.equal(layer.weight, plain.weight), name
        if not layer.refocusing:  # 1x1: a plain trainable conv
            continue
        official_groups = (layer.in_channels * layer.out_channels //
                           layer.groups**2)
        assert layer.map_groups == official_groups
        bound = layer.refocus_weight[0].numel()**-0.5  # 1 / sqrt(fan_in)
        largest = layer.refocus_weight.abs().max()
        assert bound / 2 < largest <= bound, (name, largest, bound)
        with torch.no_grad():
            plain.weight.copy_(official_refocused_kernel(
                plain.weight, layer.refocus_weight, official_groups))
        refocusing += 1
    return refocusing
