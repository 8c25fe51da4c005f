"""tools/fold.py: folded checkpoints load strictly into the stock models."""
import copy
import os
import os.path as osp

import pytest
import torch
from fold_runner_helpers import (
    load_tool,
    make_data,
    save_random_checkpoint,
    tiny_cfg,
    variant_conv_cfg,
)
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmconvplug.apis import plugin_type_names
from mmconvplug.fold import verify_fold

MIM = {
    'mmdet': osp.join(osp.dirname(__import__('mmdet').__file__), '.mim',
                      'configs'),
    'mmseg': osp.join(osp.dirname(__import__('mmseg').__file__), '.mim',
                      'configs'),
}


def build(cfg):
    init_default_scope(cfg.default_scope)
    return MODELS.build(copy.deepcopy(cfg.model)).eval()  # builders edit it


def types_in(node):
    if isinstance(node, dict):
        found = {node['type']} if isinstance(node.get('type'), str) else set()
        for value in node.values():
            found |= types_in(value)
        return found
    if isinstance(node, (list, tuple)):
        return set().union(*(types_in(v) for v in node)) if node else set()
    return set()


def fold_into_stock(tmp_path, stock_path, scope, train_model_cfg, shape):
    """Train-config = stock + variant convs; fold; load into the stock model."""
    stock = Config.fromfile(osp.join(MIM[scope], stock_path))
    train_cfg = Config.fromfile(osp.join(MIM[scope], stock_path))
    train_cfg.model = train_model_cfg(stock.model.to_dict())
    train_cfg.custom_imports = dict(imports=['mmconvplug'],
                                    allow_failed_imports=False)
    train_cfg.custom_hooks = [dict(type='FoldHook')]
    config = str(tmp_path / 'train_config.py')
    train_cfg.dump(config)
    ckpt = save_random_checkpoint(train_cfg, str(tmp_path / 'trained.pth'))
    out = str(tmp_path / 'deploy' / 'folded.pth')
    os.makedirs(osp.dirname(out))
    rc = load_tool('fold').main(
        [config, ckpt, out, '--shape', str(shape[0]), str(shape[1])])
    assert rc == 0

    deploy = Config.fromfile(out[:-4] + '.py')
    assert 'custom_imports' not in deploy
    assert not types_in(deploy.to_dict()) & (plugin_type_names()
                                             | {'FoldHook'})
    folded = torch.load(out, weights_only=True)
    assert folded['meta']['note'] == 'fold test'  # meta kept
    assert folded['meta']['mmconvplug_fold']['kept_layers'] == []
    stock_model = build(stock)
    stock_model.load_state_dict(folded['state_dict'], strict=True)

    trained = build(train_cfg)
    trained.load_state_dict(torch.load(ckpt)['state_dict'], strict=True)
    x = torch.randn(1, 3, *shape)
    result = verify_fold(trained, stock_model, x)
    assert result.max_rel_error < 1e-3, result
    return config, ckpt, out


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['DOConv', 'RefConv'])
def test_folded_ssd300_loads_into_stock_voc_ssd300(tmp_path, capsys,
                                                   variant):
    conv_cfg = dict(type=variant)

    def with_variant(model):
        model['backbone'] = dict(model['backbone'], conv_swap=conv_cfg)
        model['neck']['conv_cfg'] = conv_cfg  # SSDNeck extra layers
        return model

    config, ckpt, out = fold_into_stock(tmp_path,
                                        'pascal_voc/ssd300_voc0712.py',
                                        'mmdet', with_variant, (300, 300))
    assert 'no mmconvplug needed' in capsys.readouterr().out

    # never overwrite: a second export to the same OUT is refused
    rc = load_tool('fold').main([config, ckpt, out])
    assert rc == 2
    assert 'already exists' in capsys.readouterr().err
    assert not [f for f in os.listdir(osp.dirname(out)) if '.partial' in f]


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['DOConv', 'RefConv'])
def test_folded_deeplabv3plus_loads_into_stock_cityscapes_model(
        tmp_path, variant):
    conv_cfg = dict(type=variant)

    def with_variant(model):
        model['backbone']['conv_cfg'] = conv_cfg
        model['decode_head']['conv_cfg'] = conv_cfg
        model['auxiliary_head']['conv_cfg'] = conv_cfg
        return model

    _, _, out = fold_into_stock(
        tmp_path, 'deeplabv3plus/'
        'deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py', 'mmseg',
        with_variant, (128, 128))
    deploy = Config.fromfile(out[:-4] + '.py')
    assert deploy.model.backbone.get('conv_cfg') is None
    assert deploy.model.decode_head.get('conv_cfg') is None


@pytest.mark.slow
def test_non_foldable_layers_stay_in_deploy_config(tmp_path, capsys):
    import fold_test_modules  # noqa: F401 (registers FoldTestGatedConv)
    data_root = make_data(str(tmp_path / 'data'), 'cityscapes')
    cfg = tiny_cfg('cityscapes', data_root, str(tmp_path / 'work'),
                   variant_conv_cfg())
    cfg.model.decode_head.conv_cfg = dict(type='FoldTestGatedConv')
    config = str(tmp_path / 'config.py')
    cfg.dump(config)
    ckpt = save_random_checkpoint(cfg, str(tmp_path / 'trained.pth'))
    out = str(tmp_path / 'folded.pth')
    assert load_tool('fold').main(
        [config, ckpt, out, '--shape', '64', '128']) == 0
    printed = capsys.readouterr().out
    assert 'kept' in printed and 'FoldTestGatedConv' in printed
    deploy = Config.fromfile(out[:-4] + '.py')
    assert deploy.model.backbone.conv_cfg is None
    assert deploy.model.decode_head.conv_cfg == dict(type='FoldTestGatedConv')
    model = build(deploy)
    model.load_state_dict(torch.load(out)['state_dict'], strict=True)
