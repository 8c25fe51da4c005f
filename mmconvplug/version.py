"""Package version (single source: kept equal to pyproject.toml)."""
__version__ = '0.1.0'
