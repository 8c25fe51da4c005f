"""Argument checks shared by the layers and backbones.

One rule everywhere: a ``bool`` is not an integer (``True`` would otherwise
pass as 1), and every message names the owner and the argument.

Example:
    >>> check_positive_int(4, 'num_experts', 'CondConv')
    4
    >>> check_positive_int(True, 'num_experts', 'CondConv')
    Traceback (most recent call last):
    ...
    ValueError: CondConv: num_experts must be a positive int, got True.
"""
import numbers
import operator
from typing import Any, Optional, Sequence


def _as_int(value: Any) -> Optional[int]:
    """``value`` as an int (``int``, numpy integers, ...), None for a bool
    or anything that is not an integer."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_int(value: Any,
              name: str,
              owner: str,
              low: Optional[int] = None,
              high: Optional[int] = None,
              hint: str = '') -> int:
    """Return ``value`` as an int in ``[low, high]`` (bounds optional).

    Args:
        value: The argument to check.
        name (str): The argument's name, for the message.
        owner (str): Who checks (a class or function name), for the message.
        low (int, optional): Smallest allowed value. Defaults to None.
        high (int, optional): Largest allowed value. Defaults to None.
        hint (str): Appended to the message (e.g. what the paper uses).

    Returns:
        int: ``value``.

    Raises:
        ValueError: ``value`` is a bool, not an integer, or out of range.
    """
    if low is not None and high is not None:
        wanted = f'an int in [{low}, {high}]'
    elif low is not None:
        wanted = f'an int >= {low}'
    elif high is not None:
        wanted = f'an int <= {high}'
    else:
        wanted = 'an int'
    return _check(value, name, owner, low, high, hint, wanted)


def _check(value: Any, name: str, owner: str, low: Optional[int],
           high: Optional[int], hint: str, wanted: str) -> int:
    number = _as_int(value)
    if number is None or (low is not None and number < low) or (
            high is not None and number > high):
        raise ValueError(f'{owner}: {name} must be {wanted}, got {value!r}'
                         f'{"; " + hint if hint else ""}.')
    return number


def check_positive_int(value: Any, name: str, owner: str,
                       hint: str = '') -> int:
    """``check_int(value, name, owner, low=1)``, an int >= 1 and not a bool,
    worded "must be a positive int"."""
    return _check(value, name, owner, 1, None, hint, 'a positive int')


def check_positive_number(value: Any, name: str, owner: str) -> float:
    """Return ``value`` (a real number > 0, not a bool) as a float.

    Raises:
        ValueError: ``value`` is a bool, not real, or not positive.
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not value > 0):
        raise ValueError(
            f'{owner}: {name} must be a number > 0, got {value!r}.')
    return float(value)


def check_choice(value: Any, name: str, owner: str,
                 choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ValueError: it is not; the message lists the choices.
    """
    if value not in tuple(choices):
        raise ValueError(f'{owner}: {name}={value!r} is not one of '
                         f'{tuple(choices)}.')
    return value
