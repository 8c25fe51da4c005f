"""The fold engine: conv variants -> plain convs, BN fusion, verification.

* :func:`fold_model` folds every foldable conv variant of a model (and, with
  ``fuse_bn=True``, the BatchNorms right after plain convs) and can return a
  :class:`FoldReport` of what folded and what stayed;
* :func:`verify_fold` measures how far the folded model's outputs are from
  the original's;
* :func:`check_checkpoint_matches_model` refuses folded/unfolded checkpoint
  mix-ups that mmengine's non-strict loading would let through silently.
"""
from .bn_fusion import fuse_batch_norms, fuse_conv_and_bn
from .checkpoint_guard import (FoldCheckpointMismatchError,
                               check_checkpoint_matches_model)
from .fold_model import fold_model, is_conv_variant
from .report import FoldedLayer, FoldReport, FusedNorm, KeptLayer
from .verify import FoldVerification, verify_fold

__all__ = [
    'fold_model', 'verify_fold', 'FoldReport', 'FoldedLayer', 'KeptLayer',
    'FusedNorm', 'FoldVerification', 'fuse_batch_norms', 'fuse_conv_and_bn',
    'is_conv_variant', 'check_checkpoint_matches_model',
    'FoldCheckpointMismatchError'
]
