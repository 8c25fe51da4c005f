"""Benchmarks behind ``tools/benchmark.py`` (ratios measured in one run)."""
