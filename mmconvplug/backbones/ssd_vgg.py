"""``SSDVGGConvCfg``: deprecated; use mmdet's ``SSDVGG`` and ``conv_swap``.

mmdet's ``SSDVGG`` hard-codes ``nn.Conv2d``, so ``conv_cfg`` could not reach
it and this class rebuilt its layer list with ``conv_cfg``. The model-wide
``conv_swap`` reaches those convs (and the SSD neck's and head's) without a
special class::

    model = dict(backbone=dict(conv_swap=dict(type='DOConv')))

``SSDVGGConvCfg`` is kept as a thin alias so old configs still build,
train and fold: it *is* mmdet's ``SSDVGG`` (a subclass adding nothing to
the state dict) whose every conv is swapped, at build time, for
``conv_cfg``'s type with that variant's exact ``from_conv``; a
``DeprecationWarning`` names the replacement. Its state-dict keys are
``SSDVGG``'s, so old checkpoints load unchanged, and
:meth:`SSDVGGConvCfg.replacement_cfg` gives the replacement config (used by
the fold tool's deploy config, which then names the stock ``SSDVGG``).
"""
import warnings
from typing import Optional

from mmdet.models.backbones import SSDVGG

from ..registry import MODELS

#: The message of the DeprecationWarning (and the migration to do).
DEPRECATION = (
    "SSDVGGConvCfg is deprecated: use mmdet's SSDVGG with a conv swap, "
    "backbone=dict(type='SSDVGG', conv_swap=dict(type=<conv_cfg type>)) "
    "instead of type='SSDVGGConvCfg', conv_cfg=... (same state-dict keys, so "
    'checkpoints load unchanged).')


def _conv_swap_of(conv_cfg: dict) -> dict:
    """The ``conv_swap`` block that reproduces ``conv_cfg`` on every conv."""
    if not isinstance(conv_cfg, dict) or 'type' not in conv_cfg:
        raise ValueError(
            f'SSDVGGConvCfg: conv_cfg must be None or dict(type=<conv '
            f'variant>, ...), got {conv_cfg!r}. {DEPRECATION}')
    return dict(conv_cfg)


@MODELS.register_module()
class SSDVGGConvCfg(SSDVGG):
    """Deprecated alias: mmdet's ``SSDVGG`` with every conv swapped for
    ``conv_cfg``'s variant.

    Args:
        *args: ``SSDVGG``'s arguments (``depth``, ``with_last_pool``, ...).
        conv_cfg (dict, optional): ``dict(type=<conv variant>, **from_conv
            arguments)``; None builds the plain ``SSDVGG``. Defaults to
            None.
        **kwargs: ``SSDVGG``'s keyword arguments.

    Raises:
        ValueError: ``conv_cfg`` is not a dict with a ``type``.
        ConvSwapConfigError: its type has no exact ``from_conv`` or it
            holds arguments ``from_conv`` does not take.
    """

    #: The type that replaces this alias.
    replacement_type = 'SSDVGG'
    #: Kept for callers of the retired protocol (the model benchmark looks
    #: up a stock type's conv_cfg-aware twin by it).
    stock_type = replacement_type

    def __init__(self, *args, conv_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
        if conv_cfg is not None:
            from mmconvplug.swap import swap_convs
            swap_convs(self, _conv_swap_of(conv_cfg))

    @classmethod
    def replacement_cfg(cls, cfg: dict) -> dict:
        """The replacement of an ``SSDVGGConvCfg`` config (a new dict):
        ``type='SSDVGG'`` and, for a ``conv_cfg``, a ``conv_swap`` of its
        type on the backbone's every conv."""
        new = {k: v for k, v in dict(cfg).items() if k != 'conv_cfg'}
        new['type'] = cls.replacement_type
        conv_cfg = dict(cfg).get('conv_cfg')
        if conv_cfg is not None:
            new['conv_swap'] = _conv_swap_of(conv_cfg)
        return new
