"""Independent reference formulas for the conv variants, from their papers.

Written from the equations, not from the modules' code paths: convs run as
explicit patch matrices (``F.unfold`` + ``einsum``), never ``F.conv2d``,
and each variant's maths is spelt out the way its paper states it. Meant for
float64 comparisons in tests.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair


def output_size(height: int, width: int, kernel_size, stride, padding,
                dilation) -> Tuple[int, int]:
    """Spatial output size of a conv (PyTorch's formula)."""
    size = []
    for n, k, s, p, d in zip((height, width), _pair(kernel_size),
                             _pair(stride), _pair(padding), _pair(dilation)):
        size.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(size)


def input_patches(x: torch.Tensor, kernel_size, stride, padding,
                  dilation) -> torch.Tensor:
    """The receptive-field patches of ``x``: (B, C_in, kh*kw, L)."""
    batch, channels = x.shape[:2]
    patches = F.unfold(x, _pair(kernel_size), _pair(dilation),
                       _pair(padding), _pair(stride))
    return patches.reshape(batch, channels, -1, patches.shape[-1])


def conv2d_by_unfold(x: torch.Tensor,
                     weight: torch.Tensor,
                     bias: Optional[torch.Tensor] = None,
                     stride=1,
                     padding=0,
                     dilation=1,
                     groups: int = 1) -> torch.Tensor:
    """A grouped 2-D convolution as a patch-matrix product.

    ``out[b, o, l] = sum_{c, s} weight[o, c, s] * patch[b, g(o) + c, s, l]``
    where ``g(o)`` is the first input channel of output ``o``'s group.
    """
    out_channels, channels_per_group, kh, kw = weight.shape
    batch, _, height, width = x.shape
    patches = input_patches(x, (kh, kw), stride, padding, dilation)
    patches = patches.reshape(batch, groups, channels_per_group, kh * kw, -1)
    kernel = weight.reshape(groups, out_channels // groups,
                            channels_per_group, kh * kw)
    out = torch.einsum('bgcsl,gocs->bgol', patches, kernel)
    out = out.reshape(batch, out_channels, -1)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1)
    return out.reshape(batch, out_channels,
                       *output_size(height, width, (kh, kw), stride, padding,
                                    dilation))


def do_conv_feature_composition(x: torch.Tensor,
                                weight: torch.Tensor,
                                depthwise: torch.Tensor,
                                bias: Optional[torch.Tensor],
                                kernel_size,
                                stride=1,
                                padding=0,
                                dilation=1,
                                groups: int = 1) -> torch.Tensor:
    """DO-Conv in the paper's *feature composition* form (Cao et al. 2020).

    First the depthwise operator: every input channel ``c`` maps its own
    (kh*kw) patch ``P[c]`` to ``D_mul`` features, ``P'[c] = D[c]^T P[c]``
    (``D[c]`` is (kh*kw x D_mul)). Then the conventional operator:
    ``out[o] = sum_{c in group(o), d} W[o, c, d] P'[c, d]``.

    Args:
        weight: ``W``, (C_out, C_in / groups, D_mul).
        depthwise: ``D`` (identity already added), (C_in, kh*kw, D_mul).
    """
    out_channels, channels_per_group, d_mul = weight.shape
    batch, in_channels, height, width = x.shape
    patches = input_patches(x, kernel_size, stride, padding, dilation)
    features = torch.einsum('bcsl,csd->bcdl', patches, depthwise)
    features = features.reshape(batch, groups, channels_per_group, d_mul, -1)
    conventional = weight.reshape(groups, out_channels // groups,
                                  channels_per_group, d_mul)
    out = torch.einsum('bgcdl,gocd->bgol', features, conventional)
    out = out.reshape(batch, out_channels, -1)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1)
    return out.reshape(batch, out_channels,
                       *output_size(height, width, kernel_size, stride,
                                    padding, dilation))


def rectangular_identity(taps: int, d_mul: int,
                         dtype=torch.float64) -> torch.Tensor:
    """The (taps x D_mul) identity DO-Conv's ``D`` starts from."""
    identity = torch.zeros(taps, d_mul, dtype=dtype)
    for i in range(taps):
        identity[i, i] = 1
    return identity


def refocused_kernel_by_shifts(basis: torch.Tensor, refocus: torch.Tensor,
                               map_groups: int) -> torch.Tensor:
    """RefConv's ``W_t = W_b + T(W_b)`` written out tap by tap.

    The basis kernels (N = C_out * C_in / groups two-dimensional kernels)
    form an N-channel image. ``T`` is a grouped cross-correlation of that
    image with the map ``refocus`` (N, N / G, mh, mw), zero padding
    (mh // 2, mw // 2):
    ``T(W_b)[n, i, j] = sum_{m in group(n)} sum_{a, b}
    refocus[n, m, a, b] * W_b_padded[m, i + a, j + b]``.
    """
    out_channels, channels_per_group, kh, kw = basis.shape
    num_kernels = out_channels * channels_per_group
    map_h, map_w = refocus.shape[-2:]
    per_group = num_kernels // map_groups
    padded = torch.zeros(num_kernels, kh + 2 * (map_h // 2),
                         kw + 2 * (map_w // 2), dtype=basis.dtype)
    padded[:, map_h // 2:map_h // 2 + kh,
           map_w // 2:map_w // 2 + kw] = basis.reshape(num_kernels, kh, kw)
    refocused = torch.zeros(num_kernels, kh, kw, dtype=basis.dtype)
    taps = refocus.reshape(map_groups, per_group, per_group, map_h, map_w)
    for a in range(map_h):
        for b in range(map_w):
            shifted = padded[:, a:a + kh, b:b + kw].reshape(
                map_groups, per_group, kh, kw)
            refocused += torch.einsum('gnm,gmij->gnij', taps[..., a, b],
                                      shifted).reshape(num_kernels, kh, kw)
    return basis + refocused.reshape(basis.shape)
