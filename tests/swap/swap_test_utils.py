"""Shared helpers of the conv-swap tests: configs, builds, comparisons."""
import copy
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from torch import nn
from torch.nn.modules.conv import _ConvNd

from mmconvplug.swap.swap_convs import plain_conv_types

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The end-to-end helpers (tiny configs, tools as modules) of tests/e2e.
sys.path.insert(0, osp.join(REPO, 'tests', 'e2e'))
# The official RefConv kernel (tests/convs/refconv_official_reference.py).
sys.path.insert(0, osp.join(REPO, 'tests', 'convs'))
# Imported here, after the path is set, so the swap tests that use it run
# on their own too (not only after a module that set the path).
from refconv_official_reference import (  # noqa: E402,F401
    refocus_stock_kernels_officially,
)

#: new config -> (stock config it inherits, test input (N, C, H, W)).
SWAP_CONFIGS = {
    'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py':
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', (1, 3, 128, 128)),
    'refconv/ssd300_vgg16-refconv-all_8xb8-24e_voc0712.py':
    ('mmdet::pascal_voc/ssd300_voc0712.py', (1, 3, 300, 300)),
    'refconv/deeplabv3plus_r50-d8-refconv-aspp_4xb2-80k_cityscapes-512x1024.py':  # noqa: E501
    ('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-'
     '512x1024.py', (1, 3, 64, 64)),
    'doconv/deeplabv3plus_r50-d8-doconv-aspp_4xb2-80k_cityscapes-512x1024.py':  # noqa: E501
    ('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-'
     '512x1024.py', (1, 3, 64, 64)),
}


def load(config: str) -> Config:
    """A repository config (relative to configs/) or an ``mmdet::`` /
    ``mmseg::`` stock one."""
    if '::' in config:
        scope, relative = config.split('::')
        library = __import__(scope)
        config = osp.join(osp.dirname(library.__file__), '.mim', 'configs',
                          relative)
    else:
        config = osp.join(REPO, 'configs', config)
    return Config.fromfile(config)


def without_downloads(model_cfg: dict) -> dict:
    """The model config with its published init switched off (tests never
    download): backbone ``init_cfg`` and mmseg's ``pretrained``; fewer RPN
    proposals at test time (faster; the same network)."""
    model_cfg = copy.deepcopy(model_cfg)
    if 'pretrained' in model_cfg:
        model_cfg['pretrained'] = None
    model_cfg['backbone']['init_cfg'] = None
    rpn = (model_cfg.get('test_cfg') or {}).get('rpn')
    if rpn:  # 50 proposals, not 1000: the RoI heads run on each
        rpn.update(nms_pre=100, max_per_img=50)
    return model_cfg


def build(cfg: Config, model_cfg: dict = None) -> nn.Module:
    init_default_scope(cfg.default_scope)
    return MODELS.build(copy.deepcopy(model_cfg or cfg.model)).eval()


def convs_under(model: nn.Module, prefixes, plain_only: bool = True) -> dict:
    """``{name: conv}`` of the plain convs (or, with ``plain_only=False``,
    of every conv layer) under ``prefixes`` (all of the model when
    empty)."""
    return {
        name: module
        for name, module in model.named_modules()
        if (type(module) in plain_conv_types() if plain_only else isinstance(
            module, _ConvNd)) and (not prefixes or any(
                name == p or name.startswith(p + '.') for p in prefixes))
    }


def perturbed_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Move every parameter and float buffer (as a trained or pretrained
    model's would be), reproducibly."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.add_(0.05 * noise * tensor.abs().mean().clamp_min(
                    0.1))
    for module in model.modules():  # BN variances must stay positive
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_var.abs_()
    return model


def model_dict(cfg) -> dict:
    """``cfg.model`` as a plain dict, without the ``_scope_`` keys mmengine
    adds when a config inherits ``mmdet::`` / ``mmseg::`` bases."""

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != '_scope_'}
        if isinstance(node, (list, tuple)):
            return type(node)(strip(v) for v in node)
        return node

    return strip(cfg.model.to_dict())
