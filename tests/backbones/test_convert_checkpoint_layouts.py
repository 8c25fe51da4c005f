"""tools/convert_pretrained.py on the common checkpoint layouts.

Bare, ``state_dict``-keyed (mmengine) and ``model``-keyed (detectron2, many
training scripts) files, each also saved from a DDP-wrapped model
(``module.`` on every key), are converted; the result holds the weights
under ``state_dict`` with the other plain top-level entries, every printed
line names the layout found, and the ``Pretrained`` init the tool's docs
recommend then loads it: the variant model computes the plain network.
"""
import importlib.util
import os

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.logging.history_buffer import HistoryBuffer

from mmconvplug.convert import convert_checkpoint
from mmconvplug.utils.checkpoint_layout import read_checkpoint_layout

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONFIG = ("default_scope = 'mmdet'\n"
          "custom_imports = dict(imports=['mmconvplug'], "
          "allow_failed_imports=False)\n"
          "model = dict(type='ResNet', depth=18, out_indices=(3, ), "
          "conv_cfg=dict(type='DOConv'))\n")


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'convert_pretrained_layouts_tool',
        os.path.join(REPO, 'tools', 'convert_pretrained.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def plain():
    torch.manual_seed(0)
    model = ResNet(depth=18, out_indices=(3, ))
    with torch.no_grad():  # non-trivial BN statistics, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(std=0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    model.eval()
    return model


def _saved(plain, layout, ddp):
    state = plain.state_dict()
    if ddp:
        state = {f'module.{k}': v for k, v in state.items()}
    if layout == 'bare':
        return state
    if layout == 'state_dict':  # what mmengine's Runner writes
        buffer = HistoryBuffer()
        buffer.update(0.5)
        return {'meta': {'epoch': 3}, 'state_dict': state,
                'message_hub': {'log_scalars': {'loss': buffer}},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1}]}}
    # what detectron2's Checkpointer writes
    return {'model': state, 'iteration': 90, '__author__': 'someone',
            'optimizer': {'state': {0: {'momentum_buffer': torch.ones(2)}}},
            'scheduler': {'last_epoch': 90, 'base_lrs': [0.02]},
            'ema': {'conv1.weight': torch.ones(1)}}


@pytest.mark.parametrize('ddp', [False, True], ids=['plain', 'ddp'])
@pytest.mark.parametrize('layout', ['bare', 'state_dict', 'model'])
def test_every_layout_converts_and_loads_through_pretrained_init(
        tool, plain, layout, ddp, tmp_path, capsys):
    src, out = tmp_path / 'plain.pth', tmp_path / 'doconv.pth'
    torch.save(_saved(plain, layout, ddp), src)
    config = tmp_path / 'r18_doconv.py'
    config.write_text(CONFIG)
    assert tool.main([str(src), str(out), '--variant', 'doconv',
                      '--config', str(config)]) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    name = 'bare' if layout == 'bare' else f'{layout}-keyed'
    assert all(f'[{name}]' in line for line in lines), lines
    text = '\n'.join(lines)
    assert 'converted 20 convs' in text
    count = len(plain.state_dict())
    assert (f"stripped the DDP prefix 'module.' from {count} keys"
            in text) == ddp
    assert ("moved the weights from 'model'" in text) == (layout == 'model')

    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    expected_keys = {'meta', 'state_dict'}
    if layout == 'model':
        expected_keys |= {'iteration', '__author__'}
        assert ckpt['iteration'] == 90
        assert "'optimizer' (training state" in text
        assert "'scheduler' (training state" in text
        assert "'ema' (holds tensors" in text
    if layout == 'state_dict':
        assert ckpt['meta'] == {'epoch': 3}
    assert set(ckpt) == expected_keys
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])

    # the recommended init loads it: the variant model is the plain one
    target = ResNet(depth=18, out_indices=(3, ), conv_cfg=dict(type='DOConv'),
                    init_cfg=dict(type='Pretrained', checkpoint=str(out)))
    before = target.layer1[0].conv1.weight.detach().clone()
    target.init_weights()
    assert not torch.equal(target.layer1[0].conv1.weight, before)
    target.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x)[0], plain(x)[0], rtol=1e-4,
                                   atol=1e-4)


def test_without_a_config_a_ddp_file_is_stripped_too(plain):
    saved = {'model': {f'module.{k}': v
                       for k, v in plain.state_dict().items()}}
    result = convert_checkpoint(saved, 'doconv')
    assert 'layer1.0.conv1.D_delta' in result.checkpoint['state_dict']
    assert len(result.converted) == 20
    assert result.layout.name == 'model-keyed'
    assert result.layout.stripped_prefix == len(plain.state_dict())


def test_errors_name_the_layout_found(plain):
    saved = {'model': {f'module.{k}': v
                       for k, v in plain.state_dict().items()}}
    with pytest.raises(ValueError, match=r'no DOConv layer.*model-keyed '
                       r"checkpoint \(weights under 'model'.*'module\.' "
                       'stripped'):
        convert_checkpoint(saved, 'doconv', model=ResNet(depth=18))
    with pytest.raises(ValueError, match=r"a dict with \{'weights': list, "
                       r"'epoch': int\}: neither a bare state dict.*"
                       r"'state_dict' or 'model'"):
        convert_checkpoint({'weights': [1, 2], 'epoch': 3}, 'doconv')


def test_a_file_mixing_wrapped_and_unwrapped_keys_is_refused():
    state = {'module.conv.weight': torch.ones(1), 'conv.weight': torch.ones(1)}
    with pytest.raises(ValueError, match="'module.conv.weight' and "
                       "'conv.weight' are the same tensor"):
        read_checkpoint_layout(state)


def test_a_ddp_prefix_is_stripped_as_mmengine_strips_it(plain):
    """Same keys, and module versions, as mmengine's own loader gives."""
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    wrapped = torch.nn.Module()
    wrapped.module = plain
    state = wrapped.state_dict()
    stripped, layout = read_checkpoint_layout({'state_dict': state})
    assert list(stripped) == list(plain.state_dict())
    assert stripped._metadata.keys() == plain.state_dict()._metadata.keys()
    fresh = ResNet(depth=18, out_indices=(3, ))
    _load_checkpoint_to_model(fresh, {'state_dict': state}, strict=True)
    for key, value in fresh.state_dict().items():
        assert torch.equal(stripped[key], value)
