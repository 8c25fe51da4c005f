# mmconvplug: two commands on a fresh machine.
#   make demo   set up .venv (first time ~15 min: mmcv ops build), then run the demo
#   make test   set up .venv, then run the whole test suite (slow end-to-end tests too)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast benchmark datasets clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) tools/demo.py $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

benchmark: setup
	$(PY) tools/benchmark.py layers

datasets: setup
	$(PY) tools/make_tiny_datasets.py --root data/tiny

clean:
	rm -rf work_dirs outputs .pytest_cache
