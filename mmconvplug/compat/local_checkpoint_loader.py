"""Route mmengine's local checkpoint loading through :func:`load_checkpoint_file`.

The Runner's ``load_from`` / ``resume`` and ``mmengine.runner.load_checkpoint``
read local files with ``CheckpointLoader``'s ``''`` scheme, a bare
``torch.load``. Registering our loader for that scheme keeps
``weights_only=True`` explicit and gives the same clear errors everywhere:
a truncated or corrupted file is named as such, and a file carrying code is
refused with :class:`~mmconvplug.utils.checkpoint_io.UntrustedCheckpointError`.
Other schemes (``http://``, ``s3://``, ...) are left to mmengine.

Applies to mmengine 0.10.x up to 0.10.7 (newest release), whose
``load_from_local`` calls ``torch.load`` without ``weights_only``: code
execution from an untrusted file under torch < 2.6, opaque unpickling errors
under torch >= 2.6. Upstream: https://github.com/open-mmlab/mmengine/issues/1655.
"""
from typing import Any

from mmengine.runner.checkpoint import CheckpointLoader

from mmconvplug.utils.checkpoint_io import load_checkpoint_file

from .upstream import UpstreamChange


def load_local_checkpoint(filename: str, map_location: Any = None) -> Any:
    """mmengine ``CheckpointLoader`` entry for local paths."""
    return load_checkpoint_file(filename, map_location=map_location)


def register_local_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local files."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)


FIX = UpstreamChange(
    name='local_checkpoint_loader',
    package='mmengine',
    versions='>=0.10.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/issues/1655',
    summary='local checkpoints are read by a bare torch.load (no explicit '
    'weights_only, no clear error for corrupt or code-carrying files)',
    apply=register_local_checkpoint_loader)
