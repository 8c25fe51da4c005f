"""tools/benchmark.py models: the trained-form configs it builds (fast)."""
import pytest

from mmconvplug.benchmarks.models import stock_config, variant_config


def test_variant_config_puts_the_variant_wherever_conv_cfg_is_taken():
    ssd = variant_config(stock_config('ssd300'), 'DOConv', 'mmdet').model
    assert ssd.backbone.type == 'SSDVGG'  # hard-codes nn.Conv2d: a swap
    assert ssd.backbone.conv_swap == dict(type='DOConv')
    assert ssd.neck.conv_cfg == dict(type='DOConv')

    mask_rcnn = variant_config(stock_config('mask_rcnn'), 'DOConv',
                               'mmdet').model
    assert mask_rcnn.backbone.conv_cfg == dict(type='DOConv')
    assert mask_rcnn.neck.conv_cfg == dict(type='DOConv')
    assert mask_rcnn.roi_head.mask_head.conv_cfg == dict(type='DOConv')
    assert 'conv_cfg' not in mask_rcnn.rpn_head  # RPNHead has no conv_cfg

    deeplab = variant_config(stock_config('deeplabv3plus'), 'DOConv',
                             'mmseg').model
    for part in ('backbone', 'decode_head', 'auxiliary_head'):
        assert deeplab[part].conv_cfg == dict(type='DOConv'), part


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match='not a registered mmconvplug conv'):
        variant_config(stock_config('ssd300'), 'NoSuchConv', 'mmdet')
