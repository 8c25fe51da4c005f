"""mmconvplug: drop-in conv variants for MMDetection / MMSegmentation.

Importing the package (``custom_imports=dict(imports=['mmconvplug'])`` in a
config) registers every conv type, backbone, head, dataset, metric and hook in
mmengine's root registries, so the mmdet and mmseg scopes both find them,
and makes the import-time changes of upstream behaviour listed in
:data:`mmconvplug.compat.UPSTREAM_CHANGES` (``mmconvplug info`` shows
them): the compatibility fixes, the optimizer-constructor extension,
``MODELS.build`` honouring a model config's ``conv_swap`` block
(:mod:`mmconvplug.swap`) and the key-checked ``Pretrained`` initializer
(:mod:`mmconvplug.engine`).

Config -> model -> checkpoint (``init_model``, state dicts, the fold and
test entry points) is :mod:`mmconvplug.apis`.
"""
from .utils.mmcv_ops import require_mmcv_ops
from .version import __version__

require_mmcv_ops()  # mmcv's compiled ops, built for this torch: else say so
from . import compat  # noqa: F401  (first: fixes upstream before use)

# isort: split
from . import (
    backbones,  # noqa: F401
    convs,  # noqa: F401  (also installs registry.is_conv_variant)
    engine,  # noqa: F401
    keypoint,  # noqa: F401
    registry,  # noqa: F401
    swap,  # noqa: F401  (MODELS.build honours a model's conv_swap)
    utils,  # noqa: F401  (checkpoint IO, the config walker)
)
from .fold import fold_model, verify_fold

__all__ = ['__version__', 'fold_model', 'verify_fold']
