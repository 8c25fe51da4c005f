"""Let mmengine's ``efficient_conv_bn_eval`` trace models holding variants.

The Runner option ``efficient_conv_bn_eval=['backbone', ...]`` runs
``torch.fx.symbolic_trace`` on each named module and fuses every
``_ConvNd`` -> ``_BatchNorm`` pair of the graph. fx traces *through* any
module outside ``torch.nn``; a conv variant's forward branches on tensor
attributes (its kernel cache, CondConv's batch size), so the trace stops
with ``TraceError: symbolically traced variables cannot be used as inputs
to control flow`` and the run never starts.

We replace ``turn_on_efficient_conv_bn_eval_for_single_model`` by the same
function tracing with a tracer that keeps a conv variant (a module whose
class declares a bool ``foldable``, the conv-variant contract) as one leaf
call. The graph transform then sees a variant, not a ``_ConvNd``, before
the BN, and leaves the pair unfused: the result is exact, only not fused.
Plain conv + BN pairs are fused as before.

Applies to mmengine 0.8.0 (which added the option) - 0.10.7 (the newest
release, still affected). Upstream code:
https://github.com/open-mmlab/mmengine/blob/v0.10.7/mmengine/model/efficient_conv_bn_eval.py
"""
import functools

from torch import nn

from .upstream import UpstreamChange


def _is_conv_variant(module: nn.Module) -> bool:
    return isinstance(getattr(type(module), 'foldable', None), bool)


def patch_efficient_conv_bn_eval_trace() -> None:
    """Install the fix once (idempotent)."""
    from mmengine.model import efficient_conv_bn_eval as upstream
    original = upstream.turn_on_efficient_conv_bn_eval_for_single_model
    if getattr(original, '_mmconvplug_patched', False):
        return
    import torch.fx as fx

    class _VariantLeafTracer(fx.Tracer):

        def is_leaf_module(self, module, qualified_name):
            return _is_conv_variant(module) or super().is_leaf_module(
                module, qualified_name)

    @functools.wraps(original)
    def turn_on_efficient_conv_bn_eval_for_single_model(model: nn.Module):
        graph = _VariantLeafTracer().trace(model)
        fx_model = fx.GraphModule(model, graph, type(model).__name__)
        upstream.efficient_conv_bn_eval_graph_transform(fx_model)
        model.forward = fx_model.forward

    turn_on_efficient_conv_bn_eval_for_single_model._mmconvplug_patched = True
    upstream.turn_on_efficient_conv_bn_eval_for_single_model = \
        turn_on_efficient_conv_bn_eval_for_single_model


FIX = UpstreamChange(
    name='efficient_conv_bn_eval_trace',
    package='mmengine',
    versions='>=0.8.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/blob/v0.10.7/mmengine/'
    'model/efficient_conv_bn_eval.py',
    summary='Runner(efficient_conv_bn_eval=[...]) on a module holding a conv '
    'variant stops with torch.fx TraceError',
    apply=patch_efficient_conv_bn_eval_trace)
