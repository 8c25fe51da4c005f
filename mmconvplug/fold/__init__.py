"""The fold engine: conv variants -> plain convs, BN fusion, verification.

* :func:`fold_model` folds every foldable conv variant of a model (and, with
  ``fuse_bn=True``, the BatchNorms right after plain convs) and can return a
  :class:`FoldReport` of what folded and what stayed;
* :func:`verify_fold` measures how far the folded model's outputs are from
  the original's (:data:`DEFAULT_FOLD_TOLERANCE`: how far they may be).

Configs and checkpoints are one layer up: the deploy config and the folded
checkpoint export are :mod:`mmconvplug.apis`; the check that refuses a
folded checkpoint in a trained model (and the reverse) is the
checkpoint-fit engine, :mod:`mmconvplug.engine.checkpoint_fit`.
"""
from mmconvplug.utils.removed import removed_names

from .bn_fusion import fuse_batch_norms, fuse_conv_and_bn
from .fold_model import fold_model, is_conv_variant
from .report import FoldedLayer, FoldReport, FusedNorm, KeptLayer
from .verify import DEFAULT_FOLD_TOLERANCE, FoldVerification, verify_fold

__all__ = [
    'fold_model', 'verify_fold', 'FoldReport', 'FoldedLayer', 'KeptLayer',
    'FusedNorm', 'FoldVerification', 'fuse_batch_norms', 'fuse_conv_and_bn',
    'is_conv_variant', 'DEFAULT_FOLD_TOLERANCE'
]

__getattr__ = removed_names(__name__, {
    'check_checkpoint_matches_model':
    'use mmconvplug.engine.checkpoint_fit.check_checkpoint_matches_model '
    '(or check_checkpoint_fit, which also checks the keys)',
    'FoldCheckpointMismatchError':
    'use mmconvplug.engine.checkpoint_fit.FoldCheckpointMismatchError',
})
