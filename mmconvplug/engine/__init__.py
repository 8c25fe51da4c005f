"""Runner-side pieces: hooks, the checkpoint-fit engine, the key-checked
``Pretrained`` init."""
from mmconvplug.compat import install_upstream_change

from . import (
    hooks,  # noqa: F401
    pretrained_init,
)

install_upstream_change(pretrained_init.CHANGE)  # 'Pretrained' is ours now
