"""fuse_conv_and_bn (torch's fuse_conv_bn_eval): exact in float64, without
a conv bias or BN affine, and leaving every module's mode as it was."""
import pytest
import torch
from torch import nn

from mmconvplug.fold import fuse_conv_and_bn


@pytest.mark.parametrize('conv_bias, affine', [(False, False), (True, True),
                                               (False, True)])
def test_fused_conv_equals_conv_then_bn_in_float64(conv_bias, affine):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=conv_bias).double()
    bn = nn.BatchNorm2d(6, affine=affine).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        if affine:
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    conv.train(), bn.train()
    fused = fuse_conv_and_bn(conv, bn)
    assert conv.training and bn.training and fused.training
    assert fused.bias is not None and fused.weight.dtype == torch.float64
    conv.eval(), bn.eval()
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        expected = bn(conv(x))
        torch.testing.assert_close(fused(x), expected, rtol=1e-10,
                                   atol=1e-10)
