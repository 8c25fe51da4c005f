"""BN fusion of a half-precision model runs in float32 and casts back.

``fold_model(model.to(torch.bfloat16), fuse_bn=True)`` used to fuse with
torch's ``fuse_conv_bn_eval`` on the bfloat16 tensors, rounding
``rsqrt(var + eps)``, the scale and the shifted bias each to 8 bits of
mantissa. Against a float64 reference, the folded bfloat16 model must stay
within 2x the error of the unfolded bfloat16 model.
"""
import copy

import pytest
import torch
from mmdet.models.backbones import ResNet
from torch import nn

from mmconvplug.fold import fold_model
from mmconvplug.fold.bn_fusion import fuse_conv_and_bn


def _trained_like(model: nn.Module) -> nn.Module:
    """BN statistics and affines away from their init, as after training."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.02, 4.0)
                module.weight.uniform_(0.2, 2.0)
                module.bias.normal_(0, 0.5)
    model.eval()  # mmdet's ResNet.train returns None: no chaining
    return model


def _rel_error(out: torch.Tensor, reference: torch.Tensor) -> float:
    return float((out.double() - reference).abs().max() /
                 reference.abs().max())


def _cpu_half_kernels(dtype) -> bool:
    """torch < 2.4 lacks CPU half kernels DO-Conv composes with."""
    try:
        torch.baddbmm(torch.zeros(1, 2, 2, dtype=dtype),
                      torch.eye(2, dtype=dtype)[None],
                      torch.eye(2, dtype=dtype)[None])
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize('dtype', [
    pytest.param(d, marks=pytest.mark.skipif(
        not _cpu_half_kernels(d),
        reason=f'CPU {d} eye/baddbmm kernels need a newer torch'))
    for d in (torch.bfloat16, torch.float16)], ids=str)
def test_folded_half_model_is_within_2x_of_the_unfolded_one(dtype):
    torch.manual_seed(0)
    model = _trained_like(
        ResNet(depth=18, out_indices=(3, ), conv_cfg=dict(type='DOConv')))
    reference = copy.deepcopy(model).double()
    half = copy.deepcopy(model).to(dtype)
    folded, report = fold_model(half, fuse_bn=True, return_report=True)
    assert len(report.fused_norms) == 20
    assert all(p.dtype == dtype for p in folded.parameters())
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = reference(x)[0]
        unfolded_error = _rel_error(half(x.to(dtype))[0], expected)
        folded_error = _rel_error(folded(x.to(dtype))[0], expected)
    assert folded_error <= 2 * unfolded_error, (folded_error, unfolded_error)


def test_the_fused_tensors_are_the_float32_fusion_rounded_once():
    conv = nn.Conv2d(4, 6, 3, bias=False)
    bn = _trained_like(nn.BatchNorm2d(6))
    fused32 = fuse_conv_and_bn(conv.eval(), bn)
    fused16 = fuse_conv_and_bn(copy.deepcopy(conv).bfloat16(),
                               copy.deepcopy(bn).bfloat16())
    assert fused16.weight.dtype == fused16.bias.dtype == torch.bfloat16
    # from the bfloat16 inputs, computed in float32, rounded once
    conv16, bn16 = conv.bfloat16().float(), bn.bfloat16().float()
    expected = fuse_conv_and_bn(conv16, bn16)
    assert torch.equal(fused16.weight, expected.weight.bfloat16())
    assert torch.equal(fused16.bias, expected.bias.bfloat16())
    assert fused32.weight.dtype == torch.float32
