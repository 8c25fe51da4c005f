"""``verify_fold``: how far a folded model's outputs are from the original's.

The comparison itself (which outputs, which error) is
:func:`mmconvplug.analysis.output_difference`; this module names the result
for the fold engine, :class:`~mmconvplug.engine.hooks.FoldHook` and
``tools/fold.py``, and holds the one default of how far a fold may be
(:data:`DEFAULT_FOLD_TOLERANCE`).
"""
from typing import Any, Optional

from torch import nn

from mmconvplug.analysis import OutputDifference, output_difference

#: The largest relative output error ``max|a-b| / max|a|`` a fold may have
#: unless told otherwise: ``FoldHook``, ``tools/fold.py``, ``tools/test.py``
#: and their library functions all default to it.
DEFAULT_FOLD_TOLERANCE = 1e-3


class FoldVerification(OutputDifference):
    """Errors between the outputs of an original and a folded model."""

    def __str__(self) -> str:
        return f'fold verification: {super().__str__()}'


def verify_fold(original: nn.Module,
                folded: nn.Module,
                inputs: Any,
                data_samples: Optional[list] = None) -> FoldVerification:
    """Compare ``original`` and ``folded`` on the same inputs, in eval mode.

    Args:
        original (nn.Module): The model as trained.
        folded (nn.Module): The result of :func:`fold_model` on it.
        inputs (torch.Tensor | dict): A tensor ``(N, C, H, W)`` or a
            dataloader batch dict (``{'inputs': [...], 'data_samples':
            [...]}``), which the original's ``data_preprocessor`` turns into
            a tensor once for both models.
        data_samples (list, optional): Data samples for ``mode='tensor'``.
            Defaults to None.

    Returns:
        FoldVerification: Max absolute and relative errors over the
        features and raw head outputs.

    Raises:
        ValueError: ``folded`` does not have ``original``'s structure.
    """
    difference = output_difference(original, folded, inputs, data_samples,
                                   caller='verify_fold')
    return FoldVerification(**vars(difference))
