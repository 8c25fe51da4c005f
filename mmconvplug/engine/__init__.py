"""Runner-side pieces: hooks."""
from . import hooks  # noqa: F401
