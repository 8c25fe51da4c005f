"""fold_model / verify_fold / BN fusion on small models (fast)."""
import pytest
import torch
from fold_test_modules import FoldTestGatedConv, FoldTestTwoBranchConv
from mmcv.cnn import ConvModule
from torch import nn

from mmconvplug import fold_model, verify_fold
from mmconvplug.fold import FoldReport, fuse_conv_and_bn

TWO_BRANCH = dict(type='FoldTestTwoBranchConv')


def small_net(bn=True):
    """ConvModule (conv+bn+relu) -> Sequential(variant, BN) -> gated conv."""
    return nn.Sequential(
        ConvModule(3, 8, 3, padding=1, conv_cfg=TWO_BRANCH,
                   norm_cfg=dict(type='BN') if bn else None),
        nn.Sequential(FoldTestTwoBranchConv(8, 8, 3, padding=1, bias=False),
                      nn.BatchNorm2d(8), nn.ReLU()),
        nn.ModuleList([FoldTestGatedConv(8, 4, 1)]),
    )


def run(net, x):
    x = net[0](x)
    x = net[1](x)
    return net[2][0](x)


def randomise_bn_statistics(net):
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)


def test_folds_variants_everywhere_and_leaves_original_untouched():
    net = small_net().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded, report = fold_model(net, return_report=True)

    assert type(folded[0].conv) is nn.Conv2d
    assert type(folded[1][0]) is nn.Conv2d
    assert isinstance(folded[2][0], FoldTestGatedConv)  # cannot fold: kept
    assert [layer.name for layer in report.folded] == ['0.conv', '1.0']
    assert [(k.name, k.type) for k in report.kept] == [('2.0',
                                                        'FoldTestGatedConv')]
    assert 'depends on the input' in report.kept[0].reason
    assert not report.fully_folded and 'kept 1 layer' in report.summary()
    # the original still has its variants and weights
    assert isinstance(net[0].conv, FoldTestTwoBranchConv)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(run(folded, x), run(net, x))


def test_fold_model_returns_the_model_by_default_and_inplace_folds_it():
    net = small_net()
    assert isinstance(fold_model(net), nn.Sequential)
    assert isinstance(net[0].conv, FoldTestTwoBranchConv)
    same = fold_model(net, inplace=True)
    assert same is net and type(net[0].conv) is nn.Conv2d


def test_a_single_variant_folds_to_a_conv():
    conv = FoldTestTwoBranchConv(4, 4, 3, padding=1)
    folded, report = fold_model(conv, return_report=True)
    assert type(folded) is nn.Conv2d and len(report.folded) == 1


def test_nothing_to_fold_is_reported_not_an_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    folded, report = fold_model(net, return_report=True)
    assert report.nothing_to_fold and report.fully_folded
    assert 'nothing to fold' in str(report)
    assert isinstance(report, FoldReport) and folded is not net


def test_folding_does_not_consume_random_numbers():
    net = small_net()
    torch.manual_seed(123)
    fold_model(net, fuse_bn=True)
    after_fold = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_fold, torch.rand(3))


def test_bad_model_argument_raises_value_error():
    with pytest.raises(ValueError, match='must be a torch.nn.Module'):
        fold_model({'conv': 1})


def test_fuse_conv_and_bn_is_exact_in_eval_mode():
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=True)
    bn = nn.BatchNorm2d(6)
    randomise_bn_statistics(nn.Sequential(bn))
    conv.eval(), bn.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(
            fuse_conv_and_bn(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_fuse_bn_in_conv_module_and_sequential():
    net = small_net()
    randomise_bn_statistics(net)
    net.eval()
    folded, report = fold_model(net, fuse_bn=True, return_report=True)
    assert {(f.conv_name, f.norm_name) for f in report.fused_norms} == {
        ('0.conv', '0.bn'), ('1.0', '1.1')}
    assert isinstance(folded[0].norm, nn.Identity) and folded[0].with_norm
    assert isinstance(folded[1][1], nn.Identity)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(run(folded, x), run(net, x), rtol=1e-4,
                                   atol=1e-5)


def test_fuse_bn_in_resnet_stems_and_blocks():
    from mmdet.models.backbones import ResNet
    from mmseg.models.backbones import ResNetV1c
    for backbone in (ResNet(depth=18, base_channels=8, out_indices=(3, )),
                     ResNetV1c(depth=50, base_channels=8, stem_channels=8,
                               num_stages=2, out_indices=(1, ),
                               strides=(1, 2), dilations=(1, 1))):
        randomise_bn_statistics(backbone)
        backbone.eval()
        folded, report = fold_model(backbone, fuse_bn=True, return_report=True)
        remaining = [m for m in folded.modules()
                     if isinstance(m, nn.BatchNorm2d)]
        assert remaining == [] and report.fused_norms
        x = torch.randn(1, 3, 32, 32)
        with torch.no_grad():
            result = verify_fold(backbone, folded, x)
        assert result.max_rel_error < 1e-4, result


def test_verify_fold_reports_errors_of_a_wrong_fold():
    net = small_net().eval()
    folded = fold_model(net)
    with torch.no_grad():
        folded[0].conv.weight.add_(0.05)
    result = verify_fold(nn.Sequential(net[0]), nn.Sequential(folded[0]),
                         torch.randn(1, 3, 8, 8))
    assert result.max_abs_error > 1e-3 and not result.within(1e-3)
    assert result.num_outputs == 1
