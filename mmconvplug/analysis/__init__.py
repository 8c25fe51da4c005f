"""Measurement: time, memory, parameters, FLOPs, output differences, tables.

The one place the benchmarks (``tools/benchmark.py``), :class:`FoldHook`,
the fold verification (``tools/fold.py``) and the demo measure models:

* :mod:`.timing`: medians and interquartile ranges of interleaved repeats
  (CUDA events on a GPU);
* :mod:`.memory`: peak memory of one call (CPU allocator timeline, or
  ``torch.cuda.max_memory_allocated``);
* :mod:`.complexity`: parameter counts and FLOPs (mmengine
  :class:`~mmengine.analysis.FlopAnalyzer`);
* :mod:`.outputs`: differences between two models' outputs;
* :mod:`.tables`: text / Markdown tables (prettytable).
"""
from .complexity import TensorModeForward, count_flops, count_parameters
from .memory import peak_memory_bytes
from .outputs import (
    OutputDifference,
    compare_outputs,
    default_data_samples,
    eval_mode,
    flatten_tensors,
    is_base_model,
    model_outputs,
    output_difference,
    prepare_inputs,
)
from .tables import format_table
from .timing import (
    Spread,
    interleaved_medians,
    interleaved_samples,
    ratio_spread,
    spread,
    time_call,
)

__all__ = [
    'TensorModeForward', 'count_flops', 'count_parameters',
    'peak_memory_bytes', 'OutputDifference', 'compare_outputs',
    'default_data_samples', 'eval_mode', 'flatten_tensors', 'is_base_model',
    'model_outputs', 'output_difference', 'prepare_inputs', 'format_table',
    'interleaved_medians', 'interleaved_samples', 'ratio_spread', 'Spread',
    'spread', 'time_call'
]
