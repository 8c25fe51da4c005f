"""Safe checkpoint IO and config checks.

Importing this package changes nothing in other libraries: the patches of
upstream behaviour (mmengine's local checkpoint loader, CPU distributed
training, ...) live in :mod:`mmconvplug.compat`, applied by
``import mmconvplug``.
"""
from .checkpoint_io import (CorruptCheckpointError, UntrustedCheckpointError,
                            atomic_save, load_checkpoint_file)
from .config_checks import (MissingCustomImportsWarning, check_config,
                            registered_conv_types)

__all__ = [
    'CorruptCheckpointError', 'UntrustedCheckpointError', 'atomic_save',
    'load_checkpoint_file', 'MissingCustomImportsWarning', 'check_config',
    'registered_conv_types'
]
