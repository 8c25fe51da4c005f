"""Runner-side pieces: hooks, the key-checked ``Pretrained`` init."""
from . import hooks  # noqa: F401
from . import pretrained_init  # noqa: F401  (registers 'Pretrained')
