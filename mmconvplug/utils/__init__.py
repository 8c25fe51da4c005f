"""Leaf utilities: safe checkpoint IO, the config walker, torch helpers.

Nothing here imports another mmconvplug package (the layer test,
``tests/test_layers.py``, keeps it so), and importing it changes nothing in
other libraries: the patches of upstream behaviour live in
:mod:`mmconvplug.compat`, applied by ``import mmconvplug``.
"""
from .checkpoint_io import (
    CorruptCheckpointError,
    UntrustedCheckpointError,
    atomic_save,
    load_checkpoint_file,
)
from .config_walk import config_types, map_config, walk_config
from .removed import RemovedAPIError, removed_names

__all__ = [
    'CorruptCheckpointError', 'UntrustedCheckpointError', 'atomic_save',
    'load_checkpoint_file', 'config_types', 'map_config', 'walk_config',
    'RemovedAPIError'
]

# The config checks use conv types, conv_swap and keypoint metadata: they
# moved up to the layer that may know those (mmconvplug.apis).
__getattr__ = removed_names(__name__, {
    'check_config': 'use mmconvplug.apis.check_config',
    'MissingCustomImportsWarning':
    'use mmconvplug.apis.MissingCustomImportsWarning',
    'registered_conv_types': 'use mmconvplug.apis.registered_conv_types',
})
