"""Safe checkpoint IO, config checks and CPU distributed support.

Importing this package (``import mmconvplug`` does) makes mmengine's local
checkpoint loading go through :func:`load_checkpoint_file` (weights_only,
clear errors) and lets ``--launcher pytorch`` with the gloo backend run on
CPU-only machines (see :mod:`.cpu_distributed`).
"""
from .checkpoint_io import (CorruptCheckpointError, UntrustedCheckpointError,
                            atomic_save, load_checkpoint_file)
from .config_checks import (MissingCustomImportsWarning, check_config,
                            registered_conv_types)
from .cpu_distributed import enable_cpu_distributed
from .local_checkpoint_loader import register_local_checkpoint_loader

register_local_checkpoint_loader()
enable_cpu_distributed()

__all__ = [
    'CorruptCheckpointError', 'UntrustedCheckpointError', 'atomic_save',
    'load_checkpoint_file', 'MissingCustomImportsWarning', 'check_config',
    'registered_conv_types', 'enable_cpu_distributed',
    'register_local_checkpoint_loader'
]
