# mmconvplug: two commands on a fresh machine.
#   make demo   set up .venv (first time ~15 min: mmcv ops build), then run the demo
#   make test   set up .venv, then run the whole test suite (slow end-to-end tests too)
#   make docs   build the Sphinx docs (docs/_build/html), warnings as errors
#   make lint   ruff (flake8 + isort rules, pyproject.toml [tool.ruff])
#   make test-torch TORCH=2.1.2   the fast suite on another torch, in .venv-torch2.1.2
#                                 (its own mmcv build, cached per torch)
PY := .venv/bin/python
PYTEST_ARGS ?=
# The oldest supported torch (the newest tested is 2.14.1; the default 2.13.0).
TORCH ?= 2.1.2
TORCH_VENV := $(CURDIR)/.venv-torch$(TORCH)

.PHONY: setup demo test test-fast test-torch docs lint benchmark datasets clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) tools/demo.py $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .

docs: setup
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

test-torch:
	@MMCONVPLUG_VENV=$(TORCH_VENV) TORCH=$(TORCH) bash scripts/setup.sh
	$(TORCH_VENV)/bin/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

benchmark: setup
	$(PY) tools/benchmark.py layers

datasets: setup
	$(PY) tools/make_tiny_datasets.py --root data/tiny

clean:
	rm -rf work_dirs outputs .pytest_cache docs/_build
