# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Package index for torch: empty for PyPI, whose Linux wheel brings the CUDA
# libraries, or https://download.pytorch.org/whl/cpu for the CPU-only build.
TORCH_INDEX ?=

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: 2.13.0 is the version that this project is tested with.
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m backend.launcher backend.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check compute backend tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/trials.py

clean:
	rm -rf $(VENV) runs longtail.db
