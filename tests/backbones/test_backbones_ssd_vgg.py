"""SSDVGGConvCfg: mmdet's SSDVGG with conv_cfg, key for key; a folded
DO-Conv model loads, strictly, back into the stock SSDVGG."""
import pytest
import torch
from mmdet.models.backbones import SSDVGG

from mmconvplug import fold_model
from mmconvplug.backbones import SSDVGGConvCfg


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_plain_build_has_the_stock_state_dict_and_outputs():
    ours, stock = SSDVGGConvCfg(depth=16), SSDVGG(depth=16)
    assert _shapes(ours) == _shapes(stock)
    stock.load_state_dict(ours.state_dict(), strict=True)
    ours.eval()
    stock.eval()  # mmcv's VGG.train returns None: no chaining
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), stock(x)):
            assert torch.equal(a, b)


def test_every_conv_honours_conv_cfg():
    model = SSDVGGConvCfg(depth=16, conv_cfg=dict(type='DOConv'))
    convs = [m for m in model.features if type(m).__name__ == 'DOConv']
    assert len(convs) == 13 + 2  # VGG16's 13 convs, fc6 and fc7
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def test_folded_doconv_loads_strictly_into_stock_ssdvgg():
    model = SSDVGGConvCfg(depth=16, conv_cfg=dict(type='DOConv')).eval()
    with torch.no_grad():  # move D away from identity so folding matters
        for name, param in model.named_parameters():
            if 'D_delta' in name:
                param.normal_(std=0.05)
    folded = fold_model(model)
    stock = SSDVGG(depth=16)
    stock.load_state_dict(folded.state_dict(), strict=True)
    stock.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), stock(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_stock_cfg_maps_back_to_ssdvgg():
    cfg = dict(type='SSDVGGConvCfg', depth=16, conv_cfg=None,
               out_feature_indices=(22, 34))
    assert SSDVGGConvCfg.stock_type == 'SSDVGG'
    assert SSDVGGConvCfg.stock_cfg(cfg) == dict(
        type='SSDVGG', depth=16, out_feature_indices=(22, 34))
    assert cfg['type'] == 'SSDVGGConvCfg'  # the input is not modified


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=17), 'depth=17'),
    (dict(out_feature_indices=(22, 99)), 'out_feature_indices'),
    (dict(pretrained='a.pth', init_cfg=dict(type='Pretrained',
                                              checkpoint='b.pth')),
     'init_cfg'),
])
def test_bad_settings_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SSDVGGConvCfg(**kwargs)
