"""The registered conv variants, for fold-side code (see the contract).

Kept as a name for existing imports; the one query is
:func:`mmconvplug.convs.base.conv_variants`.
"""
from mmconvplug.convs.base import conv_variants as variant_classes

__all__ = ['variant_classes']
