"""Library functions behind the command-line tools in ``tools/``."""
from .test import (format_side_by_side, load_test_config, run_test,
                   test_unfolded_and_folded, with_test_hooks)

__all__ = [
    'format_side_by_side', 'load_test_config', 'run_test',
    'test_unfolded_and_folded', 'with_test_hooks'
]
