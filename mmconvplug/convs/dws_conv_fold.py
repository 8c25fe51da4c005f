"""DWSConv's fold (:mod:`mmconvplug.convs.dws_conv`): the norm fused into
the depthwise conv, depthwise + pointwise as one conv, the separable pair.

A depthwise conv followed by a 1x1 conv, with nothing nonlinear in
between, is one conv: ``W[o, j] = P[o, j] * D_{c(o, j)}`` with the depthwise
bias (the fused norm) pushed through ``P``. ``DWSConv.fold`` returns that
plain ``nn.Conv2d`` (same geometry, so a folded checkpoint loads into the
stock model), keeping the active domain only. ``fold_to='separable'`` (or
``DWSConv.fold_separable``) returns the cheaper deploy form instead, an
``nn.Sequential`` of the depthwise conv with its norm fused and the pointwise
conv. Folding uses the norm's running statistics: it matches the layer in
``eval()`` mode. The gated form depends on the input through ``p(x)`` and a
norm without running statistics (GN, ...) depends on the batch, so those do
not fold.
"""
from collections import OrderedDict
from typing import Optional, Tuple

import torch
from torch import nn


def fuse_norm(weight: torch.Tensor,
              norm: Optional[nn.Module]) -> Tuple[torch.Tensor, torch.Tensor]:
    """A depthwise kernel and bias with ``norm`` (running statistics) fused.

    Args:
        weight (Tensor): Depthwise kernel, shape (C, 1, kh, kw).
        norm (nn.Module, optional): A BN with running statistics, or None.

    Returns:
        tuple[Tensor, Tensor]: kernel (C, 1, kh, kw) and bias (C,).
    """
    bias = weight.new_zeros(weight.shape[0])
    if norm is not None:
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        bias = -norm.running_mean * scale
        if norm.bias is not None:
            bias = bias + norm.bias
        weight = weight * scale[:, None, None, None]
    return weight, bias


def separable_to_dense(
        dw_weight: torch.Tensor, dw_bias: torch.Tensor,
        pw_weight: torch.Tensor, pw_bias: Optional[torch.Tensor],
        groups: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The one conv equal to a depthwise conv followed by a pointwise one.

    ``W[o, j] = P[o, j] * D[c]`` with ``c = g(o) * C_in/G + j`` the input
    channel of group ``g(o)``; ``b = P @ b_D + b_P``.

    Args:
        dw_weight (Tensor): Depthwise kernel, shape (C_in, 1, kh, kw).
        dw_bias (Tensor): Depthwise bias, shape (C_in,).
        pw_weight (Tensor): Pointwise kernel, shape (C_out, C_in / G, 1, 1).
        pw_bias (Tensor, optional): Pointwise bias, shape (C_out,).
        groups (int): G, the pointwise conv's groups.

    Returns:
        tuple[Tensor, Tensor]: kernel (C_out, C_in / G, kh, kw), bias
        (C_out,).
    """
    out_channels, in_per_group = pw_weight.shape[:2]
    kernel_size = dw_weight.shape[2:]
    pw = pw_weight.view(groups, out_channels // groups, in_per_group)
    dw = dw_weight.view(groups, in_per_group, *kernel_size)
    weight = torch.einsum('goi,gikl->goikl', pw, dw).reshape(
        out_channels, in_per_group, *kernel_size)
    bias = torch.einsum('goi,gi->go', pw,
                        dw_bias.view(groups, in_per_group)).reshape(-1)
    if pw_bias is not None:
        bias = bias + pw_bias
    return weight, bias


@torch.no_grad()
def separable_pair(layer: nn.Module) -> nn.Sequential:
    """``Sequential(depthwise (norm fused), pointwise)`` for the active
    domain of a foldable DWSConv ``layer``, in its mode, frozen where it is.
    """
    dw_weight, dw_bias = layer.fused_depthwise()
    depthwise = nn.Conv2d(
        layer.in_channels, layer.in_channels, layer.kernel_size,
        stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
        groups=layer.in_channels, bias=True, device=dw_weight.device,
        dtype=dw_weight.dtype)
    depthwise.weight.copy_(dw_weight)
    depthwise.bias.copy_(dw_bias)
    pointwise = nn.Conv2d(
        layer.in_channels, layer.out_channels, 1, groups=layer.groups,
        bias=layer.pointwise.bias is not None,
        device=dw_weight.device, dtype=dw_weight.dtype)
    pointwise.load_state_dict(layer.pointwise.state_dict())
    # Frozen where the layer is: each folded tensor requires grad when
    # a tensor it is computed from does (the active domain's parts).
    norm = [] if layer.norms is None else list(
        layer.norms[layer.active_domain].named_parameters())
    depthwise.weight.requires_grad_(
        layer.depthwise[layer.active_domain].weight.requires_grad
        or any(p.requires_grad for n, p in norm if n == 'weight'))
    depthwise.bias.requires_grad_(any(p.requires_grad for _, p in norm))
    for name, param in pointwise.named_parameters():
        param.requires_grad_(
            layer.pointwise.get_parameter(name).requires_grad)
    folded = nn.Sequential(
        OrderedDict(depthwise=depthwise, pointwise=pointwise))
    folded.train(layer.training)
    return folded
