"""Small conv variants following the mmconvplug protocol, for fold tests.

``FoldTestTwoBranchConv`` computes ``conv(x, w_a) + conv(x, w_b)``: it folds
exactly into one conv with weight ``w_a + w_b`` (a re-parameterisation like
DO-Conv's, small enough to check by hand). ``FoldTestGatedConv`` scales its
output by a sigmoid of the input's mean: its kernel depends on the input,
so it cannot fold (like CondConv).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmconvplug.convs.base import FoldableConvMixin, NonFoldableConvMixin
from mmconvplug.registry import MODELS


@MODELS.register_module(force=True)
class FoldTestTwoBranchConv(FoldableConvMixin, nn.Module):
    """Two parallel kernels summed; folds to one conv."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, dilation=1, groups=1, bias=True):
        super().__init__()
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight_a = nn.Parameter(torch.randn(shape) * 0.1)
        self.weight_b = nn.Parameter(torch.randn(shape) * 0.1)
        self.bias = nn.Parameter(torch.randn(out_channels) * 0.1) if bias else None

    def _conv(self, x, weight, bias=None):
        return F.conv2d(x, weight, bias, self.stride, self.padding,
                        self.dilation, self.groups)

    def forward(self, x):
        return self._conv(x, self.weight_a, self.bias) + self._conv(
            x, self.weight_b)

    def folded_weight_and_bias(
            self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.weight_a + self.weight_b, self.bias

    @classmethod
    def from_conv(cls, conv):
        """``w_a`` = the conv's kernel, ``w_b`` = 0: exactly ``conv``."""
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size,
                    conv.stride, conv.padding, conv.dilation, conv.groups,
                    conv.bias is not None)
        with torch.no_grad():
            layer.weight_a.copy_(conv.weight)
            layer.weight_b.zero_()
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
        return layer


@MODELS.register_module(force=True)
class FoldTestGatedConv(NonFoldableConvMixin, nn.Module):
    """Input-dependent gate: cannot fold."""

    fold_unsupported_reason = 'its output scale depends on the input'
    from_conv_unsupported_reason = 'its output scale depends on the input'

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, dilation=1, groups=1, bias=True):
        super().__init__()
        self._set_conv_attributes(in_channels, out_channels, kernel_size,
                                  stride, padding, dilation, groups)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding, dilation, groups, bias)

    def forward(self, x):
        return self.conv(x) * torch.sigmoid(x.mean())
