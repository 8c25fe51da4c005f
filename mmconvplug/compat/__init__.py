"""Fixes for upstream breakage, applied once when mmconvplug is imported.

Each fix is one module with one function, tested in ``tests/test_compat.py``
by a test that fails without it.
"""
from .safe_checkpoint_globals import register_checkpoint_safe_globals
from .ssd_head_predict import patch_ssd_head_predict

register_checkpoint_safe_globals()
patch_ssd_head_predict()

__all__ = ['register_checkpoint_safe_globals', 'patch_ssd_head_predict']
