"""The one config -> model -> checkpoint layer (``mmconvplug.apis``).

``init_model`` builds as the Runner does (one scope rule), reads every
checkpoint layout through the one reader (``module.`` stripped and said),
checks the fit before loading; the config walker, ``plugin_type_names`` and
the default fold tolerance are the ones every tool uses (fast).
"""
import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmconvplug.apis import (
    DEFAULT_FOLD_TOLERANCE,
    DEFAULT_SCOPE,
    add_checkpoint_fit_hook,
    config_scope,
    init_model,
    load_config,
    make_deploy_config,
    map_config,
    plugin_type_names,
    walk_config,
    with_test_hooks,
)
from mmconvplug.engine.checkpoint_fit import (
    FoldCheckpointMismatchError,
    IncompatibleKeysError,
)
from mmconvplug.engine.hooks import FoldHook
from mmconvplug.fold import fold_model
from mmconvplug.fold.report import FoldReport


def _resnet_cfg(**model) -> Config:
    return Config(dict(default_scope='mmdet',
                       model=dict(type='ResNet', depth=18, **model)))


@pytest.fixture
def info_logged():
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield records
    logger.setLevel(level)
    logger.removeHandler(handler)


@pytest.mark.parametrize('layout', ['bare', 'state_dict', 'model', 'ddp'])
def test_init_model_reads_every_layout(tmp_path, layout, info_logged):
    cfg = _resnet_cfg(conv_cfg=dict(type='DOConv'))
    trained = init_model(cfg)
    state = trained.state_dict()
    with torch.no_grad():
        state['layer1.0.conv1.D_delta'] += 0.5
    saved = {
        'bare': state,
        'state_dict': dict(state_dict=state, meta=dict(note='x')),
        'model': dict(model=state, iteration=3),
        'ddp': dict(state_dict={f'module.{k}': v
                                for k, v in state.items()}),
    }[layout]
    path = str(tmp_path / 'ckpt.pth')
    torch.save(saved, path)
    model = init_model(cfg, path)
    assert not model.training and model.cfg.model.type == 'ResNet'
    torch.testing.assert_close(model.layer1[0].conv1.D_delta,
                               state['layer1.0.conv1.D_delta'])
    said = [m for m in info_logged if 'read a' in m]
    if layout == 'ddp':
        assert "DDP prefix 'module.' stripped" in said[0]
    elif layout == 'model':
        assert 'model-keyed' in said[0]
    else:
        assert said == []


def test_scope_rule_is_the_runners():
    assert DEFAULT_SCOPE == 'mmengine'
    assert config_scope(Config(dict(model=dict()))) == 'mmengine'
    assert config_scope(_resnet_cfg()) == 'mmdet'
    # mmconvplug's types live in the root registry: no scope needed ...
    conv = init_model(Config(dict(model=dict(
        type='DOConv', in_channels=3, out_channels=4, kernel_size=3))))
    assert type(conv).__name__ == 'DOConv'
    # ... mmdet's need the config's default_scope, as for the Runner.
    with pytest.raises(KeyError, match='ResNet'):
        init_model(Config(dict(model=dict(type='ResNet', depth=18))))


def test_load_config_names_and_options(tmp_path):
    cfg = load_config('mmdet::ssd/ssd300_coco.py',
                      cfg_options={'model.bbox_head.num_classes': 3})
    assert cfg.model.bbox_head.num_classes == 3
    ours = load_config('mmconvplug::demo/ssd_r18_tiny_voc.py')
    assert 'mmconvplug' in ours.custom_imports.imports
    original = _resnet_cfg()
    copied = load_config(original, {'model.depth': 34})
    assert copied.model.depth == 34 and original.model.depth == 18
    with pytest.raises(FileNotFoundError, match='no such file'):
        load_config(str(tmp_path / 'missing.py'))


def test_init_model_checks_the_fit_before_loading(tmp_path):
    cfg = _resnet_cfg(conv_cfg=dict(type='DOConv'))
    trained = init_model(cfg)
    folded_path = str(tmp_path / 'folded.pth')
    torch.save(dict(state_dict=fold_model(trained).state_dict()), folded_path)
    with pytest.raises(FoldCheckpointMismatchError, match='deploy config'):
        init_model(cfg, folded_path)
    partial = {k: v for k, v in trained.state_dict().items()
               if not k.startswith('layer4.')}
    partial_path = str(tmp_path / 'partial.pth')
    torch.save(partial, partial_path)
    with pytest.raises(IncompatibleKeysError, match=r'layer4\.\*'):
        init_model(cfg, partial_path)
    before = init_model(cfg)
    model = init_model(cfg, partial_path, strict=False)  # reported, loaded
    torch.testing.assert_close(model.layer1[0].conv1.weight,
                               partial['layer1.0.conv1.weight'])
    assert not torch.equal(before.layer1[0].conv1.weight,
                           model.layer1[0].conv1.weight)


def test_walker_and_rewriter():
    cfg = dict(model=dict(type='A', parts=[dict(type='B'), (1, 2)]))
    paths = [path for path, _ in walk_config(cfg)]
    assert paths == ['', 'model', 'model.type', 'model.parts',
                     'model.parts[0]', 'model.parts[0].type',
                     'model.parts[1]', 'model.parts[1][0]',
                     'model.parts[1][1]']

    def rename(node):
        if node.get('type') == 'B':
            node['type'] = 'C'
        return node

    new = map_config(cfg, rename)
    assert new['model']['parts'][0] == dict(type='C')
    assert isinstance(new['model']['parts'][1], tuple)
    assert cfg['model']['parts'][0] == dict(type='B')  # not changed


def test_plugin_type_names_are_ours_only():
    names = plugin_type_names()
    assert {'DOConv', 'SCResNet', 'FoldHook', 'CheckpointFitHook'} <= names
    # mmdet's, and the removed names kept only to say so, are not ours.
    assert not {'ResNet', 'CheckpointKeysHook', 'CheckpointGuardHook',
                'Pretrained'} & names


def test_one_default_fold_tolerance():
    assert FoldHook().tolerance == DEFAULT_FOLD_TOLERANCE
    cfg = Config(dict(default_scope='mmdet', custom_hooks=[]))
    hooks = with_test_hooks(cfg, fold=True).custom_hooks
    assert dict(type='FoldHook', fuse_bn=False,
                tolerance=DEFAULT_FOLD_TOLERANCE) in hooks


def test_one_checkpoint_fit_hook_per_run():
    strict = dict(type='CheckpointFitHook', strict=True)
    paper = Config(dict(default_hooks=dict(checkpoint_fit=strict)))
    assert 'custom_hooks' not in add_checkpoint_fit_hook(paper)
    tested = with_test_hooks(paper, fold=False)
    assert tested.custom_hooks == [] and tested.default_hooks.checkpoint_fit \
        == strict
    plain = add_checkpoint_fit_hook(Config(dict(custom_hooks=[])))
    assert plain.custom_hooks == [dict(type='CheckpointFitHook')]
    assert add_checkpoint_fit_hook(plain).custom_hooks == plain.custom_hooks


def test_deploy_config_drops_plugin_only_pretrained_arguments():
    cfg = Config(dict(
        custom_imports=dict(imports=['mmconvplug']),
        default_hooks=dict(checkpoint_fit=dict(type='CheckpointFitHook',
                                               strict=True)),
        model=dict(type='ResNet', depth=18, conv_cfg=dict(type='DOConv'),
                   init_cfg=dict(type='Pretrained', checkpoint='x.pth',
                                 strict=True))))
    deploy = make_deploy_config(cfg, FoldReport(), ['DOConv'])
    assert deploy.model.conv_cfg is None
    assert deploy.model.init_cfg == dict(type='Pretrained',
                                         checkpoint='x.pth')
    assert 'checkpoint_fit' not in deploy.default_hooks
    assert 'custom_imports' not in deploy
