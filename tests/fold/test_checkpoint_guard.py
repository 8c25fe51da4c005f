"""Folded vs unfolded checkpoint mix-ups fail loudly, with the fix (fast)."""
import pytest
from fold_test_modules import FoldTestTwoBranchConv  # noqa: F401 (registers)
from mmcv.cnn import ConvModule
from torch import nn

from mmconvplug import fold_model
from mmconvplug.engine.checkpoint_fit import (
    FoldCheckpointMismatchError,
    check_checkpoint_matches_model,
)


def trained_net():
    return nn.Sequential(
        ConvModule(3, 8, 3, conv_cfg=dict(type='FoldTestTwoBranchConv'),
                   norm_cfg=dict(type='BN')), nn.Conv2d(8, 2, 1))


def test_matching_checkpoints_pass():
    net = trained_net()
    check_checkpoint_matches_model(net, {'state_dict': net.state_dict()})
    folded = fold_model(net)
    check_checkpoint_matches_model(folded, folded.state_dict())


def test_trained_checkpoint_into_folded_model_names_the_variant_and_fix():
    net = trained_net()
    with pytest.raises(FoldCheckpointMismatchError) as error:
        check_checkpoint_matches_model(
            fold_model(net), {'state_dict': net.state_dict()},
            source='epoch_1.pth')
    message = str(error.value)
    assert 'epoch_1.pth was trained with FoldTestTwoBranchConv layers' in message
    assert "'0.conv" in message and 'tools/fold.py' in message
    assert 'training config' in message


def test_folded_checkpoint_into_trained_model_points_at_deploy_config():
    net = trained_net()
    ckpt = {'state_dict': {f'module.{k}': v
                           for k, v in fold_model(net).state_dict().items()}}
    with pytest.raises(FoldCheckpointMismatchError,
                       match='plain \\(folded\\) conv weights.*deploy config'):
        check_checkpoint_matches_model(net, ckpt)


def test_unrelated_missing_keys_are_left_to_mmengine():
    net = trained_net()
    state = net.state_dict()
    state.pop('1.bias')
    check_checkpoint_matches_model(net, state)  # no error: not a fold issue
