"""The conv variant types registered by mmconvplug, looked up by name."""
from typing import Dict

from torch import nn


def variant_classes() -> Dict[str, type]:
    """``{type name: class}`` of every registered mmconvplug conv variant.

    A conv variant is a registered ``nn.Module`` that declares the boolean
    ``foldable`` of the protocol in :mod:`mmconvplug.convs.base` (ours, or a
    user's own variant following the protocol).
    """
    from mmengine.registry import MODELS
    classes = {}
    for name, cls in MODELS.module_dict.items():
        if (isinstance(cls, type) and issubclass(cls, nn.Module)
                and isinstance(getattr(cls, 'foldable', None), bool)):
            classes[name] = cls
    return classes
