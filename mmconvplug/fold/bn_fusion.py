"""Fold a BatchNorm into the plain conv right before it (eval statistics).

``y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`` is itself a conv
(torch's ``fuse_conv_bn_eval``). The fused conv matches the
pair only with the BN's *running* statistics, i.e. in eval mode.

Which BN is "directly after" a conv is decided by rules, not by tracing
(symbolic tracing breaks on mmdet/mmseg's data-dependent forwards):

* ``ConvModule`` (mmcv) whose ``order`` has ``'norm'`` right after
  ``'conv'``: ``conv`` + ``norm`` (its ``norm_name`` attribute);
* a module with ``conv{i}`` and ``norm{i}_name`` (mmdet/mmseg ``ResNet`` stem,
  ``BasicBlock``, ``Bottleneck`` and blocks written the same way) whose
  forward applies ``norm{i}`` to ``conv{i}``'s output;
* ``nn.Sequential`` children ``[..., conv, bn, ...]`` (ResNet ``downsample``,
  ResNetV1c ``stem``).

Only a plain ``nn.Conv2d`` (foldable variants are folded first) and a
``_BatchNorm`` with running statistics and matching channels are fused. The
BN is replaced by ``nn.Identity`` under its own name, so ``self.norm1`` /
``ConvModule.norm`` properties and ``with_norm`` checks keep working.

Trainability (:func:`fused_trainability`): the fused weight requires grad
when the conv's weight or the BN's weight did, the fused bias when the
conv's bias or the BN's weight or bias did. A frozen pair (a frozen stage)
stays frozen and a trainable one stays trainable; torch's
``fuse_conv_bn_eval`` alone would freeze the new bias of a bias-free conv.
"""
from typing import Iterator, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from .report import FusedNorm

#: (parent, conv attribute name, norm attribute name)
ConvNormPair = Tuple[nn.Module, str, str]


@torch.no_grad()
def fuse_conv_and_bn(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """A new ``nn.Conv2d`` equal to ``bn(conv(x))`` with ``bn`` in eval mode.

    torch's :func:`torch.nn.utils.fusion.fuse_conv_bn_eval` on eval-mode
    views of the pair: a copy of ``conv`` (geometry, device, dtype kept)
    with the fused weight and a bias. ``conv`` and ``bn`` keep their
    train/eval mode, and so does the result (``conv``'s).

    The arithmetic runs in at least float32 (float64 stays float64): for a
    half-precision pair (``model.to(torch.bfloat16)``) the fused weight and
    bias are computed from the float32 values of every tensor and rounded
    to the conv's dtype once, instead of rounding ``rsqrt(var + eps)``, the
    scale and the shifted bias each in bfloat16/float16.

    Args:
        conv (nn.Conv2d): The conv (its bias may be None).
        bn (_BatchNorm): The BatchNorm right after it, with running
            statistics; ``affine=False`` is allowed.

    Returns:
        nn.Conv2d: The fused conv.
    """
    modes = conv.training, bn.training
    try:
        fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
    finally:
        conv.train(modes[0])
        bn.train(modes[1])
    dtypes = {t.dtype for t in (conv.weight, conv.bias, bn.running_mean,
                                bn.running_var, bn.weight, bn.bias)
              if t is not None}
    compute = torch.float64 if torch.float64 in dtypes else torch.float32
    if dtypes != {compute}:  # low precision somewhere: redo it in float32

        def wide(tensor):
            return None if tensor is None else tensor.detach().to(compute)

        weight, bias = fuse_conv_bn_weights(
            wide(conv.weight), wide(conv.bias), wide(bn.running_mean),
            wide(bn.running_var), bn.eps, wide(bn.weight), wide(bn.bias))
        fused.weight.copy_(weight)  # cast back to the fused conv's dtypes
        fused.bias.copy_(bias)
    return fused.train(modes[0])


def fused_trainability(fused: nn.Conv2d, conv: nn.Conv2d,
                       bn: _BatchNorm) -> nn.Conv2d:
    """Set ``requires_grad`` of ``fused`` (``bn(conv(x))`` as one conv)
    from the tensors it is computed from; returns ``fused``.

    weight: ``conv.weight`` or ``bn.weight``; bias: ``conv.bias``,
    ``bn.weight`` or ``bn.bias`` (running statistics are buffers).
    """

    def trainable(*tensors) -> bool:
        return any(t is not None and t.requires_grad for t in tensors)

    fused.weight.requires_grad_(trainable(conv.weight, bn.weight))
    if fused.bias is not None:
        fused.bias.requires_grad_(trainable(conv.bias, bn.weight, bn.bias))
    return fused


def _can_fuse(conv: nn.Module, norm: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and isinstance(norm, _BatchNorm)
            and norm.track_running_stats and norm.running_mean is not None
            and norm.num_features == conv.out_channels)


def _conv_module_pairs(module: nn.Module) -> Iterator[ConvNormPair]:
    """``ConvModule``-like: ``conv`` then ``norm`` in ``order``."""
    order = getattr(module, 'order', None)
    norm_name = getattr(module, 'norm_name', None)
    if (isinstance(order, tuple) and norm_name and 'conv' in order
            and 'norm' in order
            and order.index('norm') == order.index('conv') + 1
            and getattr(module, 'with_norm', False)):
        yield module, 'conv', norm_name


def _numbered_block_pairs(module: nn.Module) -> Iterator[ConvNormPair]:
    """ResNet stems and blocks: ``conv{i}`` with ``norm{i}_name``."""
    for index in range(1, 4):
        norm_name = getattr(module, f'norm{index}_name', None)
        conv_name = f'conv{index}'
        if isinstance(norm_name, str) and hasattr(module, conv_name):
            if getattr(module, 'deep_stem', False) and index == 1:
                continue  # ResNetV1c: conv1/norm1 are unused, stem is used
            yield module, conv_name, norm_name


def _sequential_pairs(module: nn.Module) -> Iterator[ConvNormPair]:
    """Adjacent ``conv``, ``bn`` children of an ``nn.Sequential``."""
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for conv_name, norm_name in zip(names, names[1:]):
            yield module, conv_name, norm_name


def find_conv_norm_pairs(model: nn.Module) -> Iterator[Tuple[str, ConvNormPair]]:
    """Yield ``(parent name, pair)`` for every fusable conv + BN pair."""
    for parent_name, module in model.named_modules():
        for finder in (_conv_module_pairs, _numbered_block_pairs,
                       _sequential_pairs):
            for parent, conv_name, norm_name in finder(module):
                conv = getattr(parent, conv_name, None)
                norm = getattr(parent, norm_name, None)
                if conv is not None and norm is not None and _can_fuse(
                        conv, norm):
                    yield parent_name, (parent, conv_name, norm_name)


def fuse_batch_norms(model: nn.Module) -> list:
    """Fuse every BN found by :func:`find_conv_norm_pairs`, in place.

    Returns the list of :class:`FusedNorm` entries, one per fused pair.
    """
    pairs = list(find_conv_norm_pairs(model))
    fused = []
    for parent_name, (parent, conv_name, norm_name) in pairs:
        conv = getattr(parent, conv_name)
        norm = getattr(parent, norm_name)
        if not _can_fuse(conv, norm):
            continue  # already fused through another rule
        setattr(parent, conv_name,
                fused_trainability(fuse_conv_and_bn(conv, norm), conv, norm))
        setattr(parent, norm_name, nn.Identity())
        if hasattr(parent, 'efficient_conv_bn_eval_forward'):
            # mmcv's optional fused path expects a real BN after the conv.
            parent.efficient_conv_bn_eval_forward = None
        prefix = f'{parent_name}.' if parent_name else ''
        fused.append(FusedNorm(prefix + conv_name, prefix + norm_name))
    return fused
