"""The bad-input catalogue (``docs/bad_inputs.md``), one test per entry.

Each entry checks the exception type and the parts of the message a user
needs: which setting, what was wrong, what is allowed, how to fix it; and,
where state could be left half-changed, that it was not. Entries owned by
``mmconvplug.utils`` (config checks, checkpoint IO) have their own test
files; the catalogue names those tests.
"""
import pytest
import torch
from mmcv.cnn import build_conv_layer
from torch import nn

from mmconvplug.convs.domain import get_active_domain, set_active_domain
from mmconvplug.engine.checkpoint_fit import (
    FoldCheckpointMismatchError,
    check_checkpoint_matches_model,
)
from mmconvplug.fold import fold_model


def test_doconv_d_mul_smaller_than_kernel_taps():
    with pytest.raises(ValueError) as info:
        build_conv_layer(dict(type='DOConv', D_mul=4), 8, 8, 3, padding=1)
    message = str(info.value)
    assert 'DOConv: D_mul=4 is smaller than kh*kw=9' in message
    assert 'Use D_mul >= 9, or D_mul=None' in message


def test_refconv_map_larger_than_kernel():
    with pytest.raises(ValueError) as info:
        build_conv_layer(dict(type='RefConv', map_size=5), 8, 8, 3,
                         padding=1)
    message = str(info.value)
    assert 'RefConv: map_size=(5, 5) is larger than kernel_size=(3, 3)' \
        in message
    assert 'map_size=None' in message


def test_refconv_on_a_1x1_kernel_is_a_plain_trainable_conv():
    """Documented behaviour, not an error: nothing to refocus in 1x1."""
    layer = build_conv_layer(dict(type='RefConv'), 8, 4, 1)
    assert layer.refocusing is False
    assert layer.refocus_weight is None
    assert layer.weight.requires_grad
    folded = layer.fold()
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(folded(x), layer(x))


@pytest.mark.parametrize('num_experts', [0, -2, 1.5])
def test_condconv_num_experts_below_one(num_experts):
    with pytest.raises(ValueError) as info:
        build_conv_layer(
            dict(type='CondConv', num_experts=num_experts), 8, 8, 3)
    message = str(info.value)
    assert (f'CondConv: num_experts must be an int >= 1, got '
            f'{num_experts!r}') in message
    assert 'the paper uses 4 to 32' in message


def test_scconv_even_kernel():
    with pytest.raises(ValueError) as info:
        build_conv_layer(dict(type='SCConv'), 8, 8, 2)
    message = str(info.value)
    assert 'SCConv: kernel_size=(2, 2) must be odd' in message
    assert 'Use an odd kernel' in message


def test_scconv_groups_not_dividing_channels():
    with pytest.raises(ValueError) as info:
        build_conv_layer(dict(type='SCConv'), 8, 6, 3, padding=1, groups=4)
    assert ('SCConv: groups=4 must divide both in_channels=8 and '
            'out_channels=6') in str(info.value)


def _two_domain_model():
    return nn.Sequential(
        build_conv_layer(dict(type='DWSConv', num_domains=2), 4, 8, 3,
                         padding=1),
        build_conv_layer(dict(type='DWSConv', num_domains=2), 8, 8, 3,
                         padding=1))


def test_dwsconv_domain_index_out_of_range_changes_nothing():
    model = _two_domain_model()
    set_active_domain(model, 1)
    with pytest.raises(IndexError) as info:
        set_active_domain(model, 2)
    message = str(info.value)
    assert 'DWSConv: domain index 2 is out of range' in message
    assert 'num_domains=2, so use 0..1' in message
    assert get_active_domain(model) == 1  # no layer was switched half-way
    with pytest.raises(IndexError, match='domain index -1 is out of range'):
        model[0].active_domain = -1
    assert model[0].active_domain == 1


def test_fold_model_with_nothing_to_fold_reports():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    folded, report = fold_model(model, return_report=True)
    assert report.nothing_to_fold
    assert 'nothing to fold' in report.summary()
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(folded(x), model(x))


def _doconv_model():
    return nn.Sequential(
        build_conv_layer(dict(type='DOConv'), 3, 4, 3, padding=1))


def test_folded_checkpoint_into_training_model_is_refused():
    trained = _doconv_model()
    folded_state = fold_model(trained).state_dict()
    with pytest.raises(FoldCheckpointMismatchError) as info:
        check_checkpoint_matches_model(
            _doconv_model(), {'state_dict': folded_state},
            source='folded.pth')
    message = str(info.value)
    assert message.startswith('folded.pth has plain (folded) conv weights '
                              'where the model builds a DOConv layer')
    assert 'deploy config' in message
    assert isinstance(info.value, ValueError)


def test_training_checkpoint_into_folded_model_is_refused():
    trained = _doconv_model()
    with pytest.raises(FoldCheckpointMismatchError) as info:
        check_checkpoint_matches_model(
            fold_model(trained), {'state_dict': trained.state_dict()},
            source='iter_4.pth')
    message = str(info.value)
    assert message.startswith('iter_4.pth was trained with DOConv layers '
                              'but the model has plain convs there')
    assert 'python tools/fold.py' in message
