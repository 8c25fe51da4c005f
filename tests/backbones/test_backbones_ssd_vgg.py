"""SSDVGGConvCfg, deprecated: mmdet's SSDVGG with every conv swapped for
conv_cfg's variant (conv_swap), key for key; it warns and names the
replacement, and folds into the stock SSDVGG."""
import pytest
import torch
from mmdet.models.backbones import SSDVGG

from mmconvplug import fold_model
from mmconvplug.backbones import SSDVGGConvCfg
from mmconvplug.swap import ConvSwapConfigError


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_it_warns_and_names_the_replacement():
    with pytest.warns(DeprecationWarning, match="conv_swap=dict") as record:
        backbone = SSDVGGConvCfg(depth=16)
    assert isinstance(backbone, SSDVGG)
    messages = [str(w.message) for w in record
                if issubclass(w.category, DeprecationWarning)]
    assert any("type='SSDVGG'" in m for m in messages), messages


def test_plain_build_is_the_stock_ssdvgg():
    torch.manual_seed(0)
    ours = SSDVGGConvCfg(depth=16)
    torch.manual_seed(0)
    stock = SSDVGG(depth=16)
    assert isinstance(ours, SSDVGG)
    assert _shapes(ours) == _shapes(stock)
    ours.eval()
    stock.eval()  # mmcv's VGG.train returns None: no chaining
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), stock(x)):
            assert torch.equal(a, b)


@pytest.mark.parametrize('variant', ['DOConv', 'RefConv'])
def test_every_conv_is_swapped_exactly_and_folds_into_stock_ssdvgg(variant):
    torch.manual_seed(0)
    stock = SSDVGG(depth=16)
    torch.manual_seed(0)
    model = SSDVGGConvCfg(depth=16, conv_cfg=dict(type=variant))
    stock.eval()  # mmcv's VGG.train returns None: no chaining
    model.eval()
    convs = [m for m in model.features if type(m).__name__ == variant]
    assert len(convs) == 13 + 2  # VGG16's 13 convs, fc6 and fc7
    assert not any(type(m) is torch.nn.Conv2d for m in model.modules())
    # the stock keys are all there (the variants add their own)
    assert set(stock.state_dict()) <= set(model.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():  # from_conv: exactly the plain network
        for a, b in zip(model(x), stock(x)):
            assert torch.equal(a, b)
        for name, param in model.named_parameters():  # as if trained
            if variant == 'DOConv' and 'D_delta' in name:
                param.normal_(std=0.05)
            if variant == 'RefConv' and 'refocus' in name:
                param.normal_(std=0.01)
    folded = fold_model(model)
    stock.load_state_dict(folded.state_dict(), strict=True)
    with torch.no_grad():
        for a, b in zip(model(x), stock(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_replacement_cfg_is_ssdvgg_with_a_conv_swap():
    cfg = dict(type='SSDVGGConvCfg', depth=16, conv_cfg=dict(type='DOConv'),
               out_feature_indices=(22, 34))
    assert SSDVGGConvCfg.replacement_cfg(cfg) == dict(
        type='SSDVGG', depth=16, out_feature_indices=(22, 34),
        conv_swap=dict(type='DOConv'))
    assert SSDVGGConvCfg.replacement_cfg(dict(cfg, conv_cfg=None)) == dict(
        type='SSDVGG', depth=16, out_feature_indices=(22, 34))
    assert cfg['type'] == 'SSDVGGConvCfg'  # the input is not modified


@pytest.mark.parametrize('conv_cfg, error, match', [
    ('DOConv', ValueError, 'conv_cfg must be None or dict'),
    (dict(type='SCConv'), ConvSwapConfigError, 'no exact from_conv'),
    (dict(type='RefConv', D_mul=9), ConvSwapConfigError, 'D_mul'),
])
def test_bad_conv_cfg_raise_naming_the_problem(conv_cfg, error, match):
    with pytest.raises(error, match=match):
        SSDVGGConvCfg(depth=16, conv_cfg=conv_cfg)
