"""tools/convert_pretrained.py: a plain checkpoint becomes the exact init
of a variant model (same outputs), other keys kept, no overwrite."""
import importlib.util
import os

import pytest
import torch
from mmdet.models.backbones import ResNet

from mmconvplug.convert import convert_state_dict, match_prefix

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TOOL = os.path.join(REPO, 'tools', 'convert_pretrained.py')


def _load_tool():
    """tools/convert_pretrained.py as a module (run in-process: a second
    interpreter would re-import mmdet, ~10 s on the CI's CPUs)."""
    spec = importlib.util.spec_from_file_location('convert_pretrained_tool',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trained_plain_resnet18():
    model = ResNet(depth=18, out_indices=(3, ))
    with torch.no_grad():  # non-trivial BN statistics, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(std=0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    model.eval()  # mmdet's ResNet.train returns None: no chaining
    return model


@pytest.mark.parametrize('variant, conv_cfg', [
    ('doconv', dict(type='DOConv')),
    ('refconv', dict(type='RefConv')),
    ('condconv', dict(type='CondConv', num_experts=3)),
])
def test_converted_model_computes_the_plain_function(variant, conv_cfg):
    plain = _trained_plain_resnet18()
    target = ResNet(depth=18, out_indices=(3, ), conv_cfg=conv_cfg)
    state, converted = convert_state_dict(plain.state_dict(), variant,
                                          model=target)
    assert len(converted) == 1 + 16 + 3  # stem, 16 block convs, 3 shortcuts
    assert torch.equal(state['bn1.running_var'],
                       plain.state_dict()['bn1.running_var'])
    target.load_state_dict(state, strict=True)
    target.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            target(x)[0], plain(x)[0], rtol=1e-4, atol=1e-4)


def test_prefix_matching_for_backbone_checkpoints():
    model_keys = ['backbone.conv1.weight', 'backbone.bn1.weight',
                  'neck.lateral.weight']
    assert match_prefix(model_keys, ['conv1.weight', 'bn1.weight',
                                     'fc.weight']) == 'backbone.'
    assert match_prefix(model_keys, model_keys) == ''


def test_without_model_every_kernel_is_converted():
    plain = _trained_plain_resnet18()
    state, converted = convert_state_dict(plain.state_dict(), 'doconv')
    assert len(converted) == 20
    assert 'layer1.0.conv1.D_delta' in state and 'bn1.weight' in state


def test_unknown_variant_and_mismatched_model_raise():
    plain = _trained_plain_resnet18().state_dict()
    with pytest.raises(ValueError, match='variant'):
        convert_state_dict(plain, 'dynconv')
    with pytest.raises(ValueError, match='no DOConv layer'):
        convert_state_dict(plain, 'doconv', model=ResNet(depth=18))


def test_command_line_with_config_and_no_overwrite(tmp_path, capsys):
    plain = _trained_plain_resnet18()
    src = tmp_path / 'r18.pth'
    torch.save(dict(state_dict=plain.state_dict(), meta=dict(epoch=3)), src)
    config = tmp_path / 'r18_doconv.py'
    config.write_text(
        "default_scope = 'mmdet'\n"
        "custom_imports = dict(imports=['mmconvplug'], "
        "allow_failed_imports=False)\n"
        "model = dict(type='ResNet', depth=18, out_indices=(3, ), "
        "conv_cfg=dict(type='DOConv'))\n")
    out = tmp_path / 'r18_doconv.pth'
    args = [str(src), str(out), '--variant', 'doconv', '--config',
            str(config)]
    tool = _load_tool()
    assert tool.main(args) == 0
    assert 'converted 20 convs' in capsys.readouterr().out
    ckpt = torch.load(out, map_location='cpu')
    assert ckpt['meta'] == dict(epoch=3)
    target = ResNet(depth=18, out_indices=(3, ),
                    conv_cfg=dict(type='DOConv'))
    target.load_state_dict(ckpt['state_dict'], strict=True)
    target.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x)[0], plain(x)[0], rtol=1e-4,
                                   atol=1e-4)
    written = out.read_bytes()
    with pytest.raises(SystemExit, match='refusing to overwrite'):
        tool.main(args)
    assert out.read_bytes() == written
