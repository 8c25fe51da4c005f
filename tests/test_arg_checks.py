"""The one argument-check helper: a bool is not an int, 0 is not positive,
and the message names the owner and the argument."""
import numpy as np
import pytest

from mmconvplug.backbones import DomainBN
from mmconvplug.convs import CondConv, DOConv, DWSConv, RefConv, SCConv
from mmconvplug.utils.arg_checks import (
    check_choice,
    check_int,
    check_positive_int,
    check_positive_number,
)


@pytest.mark.parametrize('value', [True, False, 0, -3, 2.0, '4', None])
def test_positive_int_refuses_bools_zero_and_non_ints(value):
    with pytest.raises(ValueError,
                       match=r'^CondConv: num_experts must be a positive '
                       rf'int, got {value!r}'):
        check_positive_int(value, 'num_experts', 'CondConv')


def test_positive_int_accepts_ints_and_numpy_ints():
    assert check_positive_int(1, 'groups', 'X') == 1
    value = check_positive_int(np.int64(7), 'groups', 'X')
    assert value == 7 and type(value) is int


def test_int_range_and_hint():
    assert check_int(-1, 'frozen_stages', 'MobileNetV1', low=-1,
                     high=13) == -1
    with pytest.raises(ValueError, match=r'frozen_stages must be an int in '
                       r'\[-1, 13\], got 14; -1 freezes nothing'):
        check_int(14, 'frozen_stages', 'MobileNetV1', low=-1, high=13,
                  hint='-1 freezes nothing')
    with pytest.raises(ValueError, match='must be an int in'):
        check_int(True, 'frozen_stages', 'MobileNetV1', low=-1, high=13)
    with pytest.raises(ValueError, match=r'^DWSConv: num_domains must be an '
                       r'int >= 1, got 0\.$'):
        check_int(0, 'num_domains', 'DWSConv', low=1)


@pytest.mark.parametrize('value', [True, 0, -1.5, 'x'])
def test_positive_number_refuses(value):
    with pytest.raises(ValueError, match='widen_factor must be a number > 0'):
        check_positive_number(value, 'widen_factor', 'MobileNetV1')
    assert check_positive_number(0.5, 'widen_factor', 'MobileNetV1') == 0.5


def test_choice_lists_the_choices():
    assert check_choice('conv', 'fold_to', 'DWSConv', ('conv', 'sep')) == (
        'conv')
    with pytest.raises(ValueError,
                       match=r"fold_to='onnx' is not one of \('conv', "):
        check_choice('onnx', 'fold_to', 'DWSConv', ('conv', 'sep'))


@pytest.mark.parametrize('cls, args, kwargs', [
    (DOConv, (4, 4, 3), dict(groups=True)),
    (RefConv, (4, 4, 3), dict(map_size=True)),
    (CondConv, (4, 4, 3), dict(num_experts=True)),
    (DWSConv, (4, 4, 3), dict(num_domains=True)),
    (SCConv, (4, 4), dict(pooling_r=True)),
    (DomainBN, (4, ), dict(num_domains=True)),
])
def test_layers_refuse_a_bool_for_an_int(cls, args, kwargs):
    with pytest.raises(ValueError,
                       match='must be (a positive int|an int >= 1), got True'):
        cls(*args, **kwargs)
