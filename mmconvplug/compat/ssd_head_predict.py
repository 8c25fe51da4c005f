"""Make mmdet 3.3.0 ``SSDHead`` predict again.

``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls`` to decide
how to turn logits into scores, but ``SSDHead.__init__`` skips
``AnchorHead.__init__`` and never sets ``loss_cls`` (SSD computes its
cross-entropy inline), so every SSD ``predict`` raises
``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``.

We wrap ``SSDHead.__init__`` to set ``loss_cls = None`` when the head did not
build one. ``getattr(None, 'custom_cls_channels', False)`` is ``False``, so
scores take the head's own softmax path, exactly as SSD intends. A subclass
that builds a real ``loss_cls`` later in its ``__init__`` replaces the
``None`` as usual (``nn.Module.__setattr__`` drops the plain attribute).

Applies to mmdet 3.0.0 - 3.3.0 (3.3.0 is the newest release, still
affected). Upstream: https://github.com/open-mmlab/mmdetection/issues/11780
(proposed fix https://github.com/open-mmlab/mmdetection/pull/11524).
"""
import functools

from mmdet.models.dense_heads import SSDHead

from .upstream import UpstreamChange


def patch_ssd_head_predict() -> None:
    """Install the fix once (idempotent)."""
    original_init = SSDHead.__init__
    if getattr(original_init, '_mmconvplug_patched', False):
        return

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if not hasattr(self, 'loss_cls'):
            self.loss_cls = None

    __init__._mmconvplug_patched = True
    SSDHead.__init__ = __init__


FIX = UpstreamChange(
    name='ssd_head_predict',
    package='mmdet',
    versions='>=3.0.0,<=3.3.0',
    issue='https://github.com/open-mmlab/mmdetection/issues/11780',
    summary="SSDHead.predict raises AttributeError: no attribute 'loss_cls'",
    apply=patch_ssd_head_predict)
