"""Benchmarks behind ``mmconvplug benchmark`` (ratios measured in one run).

* :mod:`.layers`: each conv variant (and public baselines) vs ``nn.Conv2d``;
* :mod:`.models`: whole models, trained form vs folded vs stock;
* :mod:`.train`: whole-model train step, variants built from the plain
  weights vs the plain model.

Measurements come from :mod:`mmconvplug.analysis`; the command line is
:mod:`mmconvplug.cli.benchmark`.
"""
