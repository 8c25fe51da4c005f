"""No silent partial loads: the key check behind ``Pretrained`` inits and
``load_from``, and ``CheckpointFitHook`` through the real mmengine Runner.

Models are thin (ResNet-18 / SCNet with 8 base channels) so each test takes
about a second.
"""
import logging

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmconvplug.backbones import SCResNet
from mmconvplug.engine.checkpoint_fit import (
    IncompatibleKeysError,
    check_checkpoint_keys,
    find_incompatible_keys,
    group_keys,
)


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    """WARNING messages of mmengine's current logger during the test."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _torchvision_resnet18(tmp_path, drop=(), extra=None) -> str:
    """A plain ResNet-18 checkpoint in torchvision's layout (+ ``fc``)."""
    state = ResNet(depth=18).state_dict()
    state = {
        k: v
        for k, v in state.items()
        if not k.endswith('num_batches_tracked') and k not in drop
    }
    state['fc.weight'] = torch.randn(1000, 512)
    state['fc.bias'] = torch.zeros(1000)
    state.update(extra or {})
    path = str(tmp_path / 'resnet18.pth')
    torch.save(state, path)
    return path


def _pretrained(checkpoint, **kwargs):
    return dict(type='Pretrained', checkpoint=checkpoint, **kwargs)


@pytest.mark.parametrize('variant', ['DOConv', 'RefConv'])
def test_variant_backbone_from_a_plain_checkpoint_is_not_reported(
        variant, tmp_path, warnings_logged):
    """Only the variants' own new tensors are missing and only the ImageNet
    ``fc`` is unused: nothing to report, and the kernels are loaded."""
    path = _torchvision_resnet18(tmp_path)
    model = ResNet(depth=18,
                   conv_cfg=dict(type=variant),
                   init_cfg=_pretrained(path, strict=True))
    model.init_weights()
    assert warnings_logged == []
    found = find_incompatible_keys(model, torch.load(path))
    assert not found
    assert found.classifier == ['fc.weight', 'fc.bias']
    new = {key.rsplit('.', 1)[1] for key in found.new_tensors}
    assert new == {
        'DOConv': {'D_delta'},
        'RefConv': {'refocus_weight'}
    }[variant]
    torch.testing.assert_close(model.layer1[0].conv1.weight,
                               torch.load(path)['layer1.0.conv1.weight'])


def test_partial_load_is_reported_once_by_name_and_still_loads(
        tmp_path, warnings_logged):
    """Default (not strict): one warning naming the missing and unused
    tensors; the rest loads as mmengine's non-strict load would."""
    path = _torchvision_resnet18(
        tmp_path,
        drop=('layer2.0.conv1.weight', ),
        extra={'layer9.0.conv1.weight': torch.zeros(1)})
    model = ResNet(depth=18, init_cfg=_pretrained(path))
    model.init_weights()
    reports = [m for m in warnings_logged if 'does not fit' in m]
    assert len(reports) == 1, warnings_logged
    assert 'layer2.0.conv1.weight' in reports[0]
    assert 'layer9.0.conv1.weight' in reports[0]
    assert 'fc.weight' not in reports[0]  # the ImageNet classifier
    torch.testing.assert_close(model.layer1[0].conv1.weight,
                               torch.load(path)['layer1.0.conv1.weight'])


def test_plain_checkpoint_into_condconv_names_the_conversion(tmp_path):
    """CondConv keeps a stack of experts under ``weight``: a plain kernel
    there is not skipped silently, the fix is the converter."""
    path = _torchvision_resnet18(tmp_path)
    model = ResNet(depth=18,
                   conv_cfg=dict(type='CondConv'),
                   init_cfg=_pretrained(path, strict=True))
    with pytest.raises(IncompatibleKeysError,
                       match='tools/convert_pretrained.py') as error:
        model.init_weights()
    assert 'layer1.0.conv1.weight (64, 64, 3, 3)' in str(error.value)


def test_whole_detector_checkpoint_with_prefix_is_exact(
        tmp_path, warnings_logged):
    state = {
        f'backbone.{k}': v
        for k, v in ResNet(depth=18).state_dict().items()
    }
    state['neck.conv.weight'] = torch.zeros(1)
    path = str(tmp_path / 'detector.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    model = ResNet(depth=18,
                   init_cfg=_pretrained(path, prefix='backbone.', strict=True))
    model.init_weights()
    # Without the prefix: the likely cause says to set it.
    with pytest.raises(IncompatibleKeysError, match="prefix='backbone.'"):
        check_checkpoint_keys(ResNet(depth=18), state, strict=True)


def test_grouping_names_whole_blocks():
    universe = [
        f'layer3.{b}.conv{c}.weight' for b in range(23) for c in (1, 2)
    ]
    unexpected = [k for k in universe if int(k.split('.')[1]) >= 6]
    assert group_keys(unexpected,
                      universe) == [f'layer3.{b}.*' for b in range(6, 23)]
    assert group_keys(['layer3.0.conv1.weight'],
                      universe) == ['layer3.0.conv1.weight']


# --- through the real Runner --------------------------------------------


class _Images(Dataset):

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return dict(inputs=torch.rand(3, 32, 32))


class _ThinSCNetModel(BaseModel):
    """A thin SCNet-50 backbone and a mean loss: enough for the Runner."""

    def __init__(self, init_cfg=None):
        super().__init__()
        self.backbone = SCResNet(depth=50,
                                 base_channels=8,
                                 out_indices=(3, ),
                                 init_cfg=init_cfg)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        features = self.backbone(torch.stack(inputs))[0]
        if mode == 'loss':
            return dict(loss=features.mean())
        return features


def _runner(tmp_path, model, strict=True, load_from=None) -> Runner:
    return Runner(model=model,
                  work_dir=str(tmp_path / 'work'),
                  train_dataloader=dict(dataset=_Images(),
                                        sampler=dict(type='DefaultSampler',
                                                     shuffle=False),
                                        batch_size=2,
                                        num_workers=0),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
                  train_cfg=dict(by_epoch=False, max_iters=1),
                  default_hooks=dict(checkpoint=None,
                                     checkpoint_fit=dict(
                                         type='CheckpointFitHook',
                                         strict=strict)),
                  load_from=load_from,
                  default_scope='mmdet')


def _scnet_checkpoint(tmp_path, depth) -> str:
    path = str(tmp_path / f'scnet{depth}.pth')
    torch.save(SCResNet(depth=depth, base_channels=8).state_dict(), path)
    return path


def test_runner_stops_on_a_wrong_depth_pretrained_init(tmp_path):
    """SCNet-101 weights for an SCNet-50: the run stops naming the blocks;
    the right checkpoint trains. The strictness ends with the run."""
    wrong = _scnet_checkpoint(tmp_path, 101)
    model = _ThinSCNetModel(init_cfg=_pretrained(wrong))
    with pytest.raises(IncompatibleKeysError) as error:
        _runner(tmp_path, model).train()
    assert 'layer3.6.*' in str(error.value)
    assert 'layer3.22.*' in str(error.value)

    right = _scnet_checkpoint(tmp_path, 50)
    runner = _runner(tmp_path, _ThinSCNetModel(init_cfg=_pretrained(right)))
    runner.train()
    assert runner.iter == 1
    torch.testing.assert_close(runner.model.backbone.layer3[5].conv3.weight,
                               torch.load(right)['layer3.5.conv3.weight'])
    # Outside a strict run, the same wrong init only warns.
    _ThinSCNetModel(init_cfg=_pretrained(wrong)).init_weights()


def test_runner_checks_load_from(tmp_path):
    full = _ThinSCNetModel().state_dict()
    partial = {
        k: v
        for k, v in full.items() if not k.startswith('backbone.layer4.')
    }
    path = str(tmp_path / 'partial.pth')
    torch.save(dict(state_dict=partial, meta=dict()), path)
    runner = _runner(tmp_path, _ThinSCNetModel(), load_from=path)
    with pytest.raises(IncompatibleKeysError,
                       match=r'load_from=.*partial\.pth') as error:
        runner.train()
    assert 'backbone.layer4.*' in str(error.value)

    path = str(tmp_path / 'full.pth')
    torch.save(dict(state_dict=full, meta=dict()), path)
    runner = _runner(tmp_path, _ThinSCNetModel(), load_from=path)
    runner.train()
    assert runner.iter == 1
