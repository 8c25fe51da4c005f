"""The mmconvplug demo (``make demo``, ``tools/demo.py``) as library code.

* :mod:`.tasks`: the demo tasks (config, tiny dataset, metric) and the
  variants (plain ``baseline`` plus every registered conv variant);
* :mod:`.runs`: train each variant with the real mmengine Runner, test it
  unfolded and folded, time inference;
* :mod:`.report`: the table, ``demo.png`` and ``results.json``.
"""
from .report import format_results, plot_results, write_results
from .runs import DemoOptions, run_demo
from .tasks import TASKS, DemoTask, demo_variants

__all__ = [
    'DemoOptions', 'run_demo', 'TASKS', 'DemoTask', 'demo_variants',
    'format_results', 'plot_results', 'write_results'
]
