"""Route mmengine's local checkpoint loading through :func:`load_checkpoint_file`.

The Runner's ``load_from`` / ``resume`` and ``mmengine.runner.load_checkpoint``
read local files with ``CheckpointLoader``'s ``''`` scheme, a bare
``torch.load``. Registering our loader for that scheme keeps
``weights_only=True`` explicit and gives the same clear errors everywhere:
a truncated or corrupted file is named as such, and a file carrying code is
refused with :class:`~mmconvplug.utils.checkpoint_io.UntrustedCheckpointError`.
Other schemes (``http://``, ``s3://``, ...) are left to mmengine.
"""
from typing import Any

from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_io import load_checkpoint_file


def load_local_checkpoint(filename: str, map_location: Any = None) -> Any:
    """mmengine ``CheckpointLoader`` entry for local paths."""
    return load_checkpoint_file(filename, map_location=map_location)


def register_local_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local files."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
