"""SSDVGGConvCfg was removed: using it, directly or from a config, raises an
error naming the replacement (mmdet's SSDVGG with a conv_swap block)."""
import pytest
from mmengine.registry import MODELS, init_default_scope

from mmconvplug.backbones import SSDVGGConvCfg


def test_calling_it_names_the_replacement():
    with pytest.raises(ValueError, match="type='SSDVGG', conv_swap=dict"):
        SSDVGGConvCfg(depth=16, conv_cfg=dict(type='DOConv'))


def test_a_config_naming_it_fails_with_the_migration():
    init_default_scope('mmdet')
    cfg = dict(type='SSDVGGConvCfg', depth=16, conv_cfg=dict(type='DOConv'))
    with pytest.raises(ValueError, match='SSDVGGConvCfg was removed.*'
                       "type='SSDVGG', conv_swap=dict"):
        MODELS.build(cfg)
