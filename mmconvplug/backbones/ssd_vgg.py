"""``SSDVGGConvCfg`` was removed: use mmdet's ``SSDVGG`` with ``conv_swap``.

mmdet's ``SSDVGG`` hard-codes ``nn.Conv2d``, so ``conv_cfg`` cannot reach
it. The model-wide ``conv_swap`` reaches those convs (and the SSD neck's and
head's) without a special class, with the same state-dict keys::

    model = dict(backbone=dict(type='SSDVGG', conv_swap=dict(type='DOConv')))

The name stays registered so that a config naming it fails with this
migration instead of mmengine's "not in the registry".
"""
from ..registry import MODELS

#: The migration the error names.
SSDVGG_CONV_CFG_REPLACEMENT = (
    "SSDVGGConvCfg was removed: use mmdet's SSDVGG with a conv swap, "
    "backbone=dict(type='SSDVGG', conv_swap=dict(type=<conv_cfg type>, ...)) "
    "instead of type='SSDVGGConvCfg', conv_cfg=... (same state-dict keys, so "
    'checkpoints load unchanged).')


@MODELS.register_module(name='SSDVGGConvCfg')
def SSDVGGConvCfg(*args, **kwargs):  # noqa: N802 (the removed class)
    """Removed: raise naming the replacement
    (:data:`SSDVGG_CONV_CFG_REPLACEMENT`).

    Raises:
        ValueError: always; the message is the migration.
    """
    raise ValueError(SSDVGG_CONV_CFG_REPLACEMENT)
