"""Keep mmcv ``ConvModule(efficient_conv_bn_eval=True)`` exact for any conv.

mmcv's efficient conv-BN eval path (arXiv:2305.11624) folds an eval-mode BN
into the conv on the fly: it scales ``conv.weight`` and calls
``conv._conv_forward(x, weight, bias)``, which only a torch ``_ConvNd``
has. A ``conv_cfg`` layer that is not one (a conv variant: DO-Conv's
``weight`` is the kernel's first slots, not the kernel; CondConv's is a
stack of experts) makes every eval forward of such a ``ConvModule`` raise
``AttributeError: ... no attribute '_conv_forward'``, and a layer that did
have the method would be scaled on the wrong tensor.

We wrap ``mmcv.cnn.bricks.conv_module.efficient_conv_bn_eval_forward``
(what ``ConvModule.turn_on_efficient_conv_bn_eval`` installs): for a conv
that is not a ``torch.nn.modules.conv._ConvNd`` it computes
``bn(conv(x))`` with the conv's own forward, i.e. exactly the unfused
module; a torch conv takes mmcv's fused path unchanged. Fold the model
(``mmconvplug.fold_model``) to get plain convs the fused path can use.
The check runs per call, so a conv swapped into a ``ConvModule`` after it
was built (``conv_swap``) is covered too; a ``ConvModule`` built before
``import mmconvplug`` keeps mmcv's function (it cannot hold a variant
before the variants are registered, unless swapped in later).

Applies to mmcv 2.0.1 (which added the path) - 2.1.0 (the newest release,
still affected). Upstream code:
https://github.com/open-mmlab/mmcv/blob/v2.1.0/mmcv/cnn/bricks/conv_module.py
"""
import functools

from torch import nn

from .upstream import UpstreamChange


def patch_efficient_conv_bn_eval() -> None:
    """Install the fix once (idempotent)."""
    from mmcv.cnn.bricks import conv_module
    original = getattr(conv_module, 'efficient_conv_bn_eval_forward', None)
    if original is None or getattr(original, '_mmconvplug_patched', False):
        return

    @functools.wraps(original)
    def efficient_conv_bn_eval_forward(bn, conv, x):
        if isinstance(conv, nn.modules.conv._ConvNd):
            return original(bn, conv, x)
        # ConvModule set conv.forward to this function: call the class's.
        return bn(type(conv).forward(conv, x))

    efficient_conv_bn_eval_forward._mmconvplug_patched = True
    conv_module.efficient_conv_bn_eval_forward = \
        efficient_conv_bn_eval_forward


FIX = UpstreamChange(
    name='conv_module_efficient_bn_eval',
    package='mmcv',
    versions='>=2.0.1,<=2.1.0',
    issue='https://github.com/open-mmlab/mmcv/blob/v2.1.0/mmcv/cnn/bricks/'
    'conv_module.py',
    summary="ConvModule(efficient_conv_bn_eval=True) with a conv that is "
    "not a torch _ConvNd raises AttributeError: no '_conv_forward' in eval",
    apply=patch_efficient_conv_bn_eval)
