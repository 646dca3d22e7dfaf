# The README's two commands, plus the checks CI runs. `make` targets build the venv on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean

$(BIN)/blastradius: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/blastradius
	$(BIN)/blastradius run cloudflare-2025-11-18

test: $(BIN)/blastradius
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q

lint: $(BIN)/blastradius
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/blastradius
	$(BIN)/mypy --strict router/core
	$(BIN)/mypy router scenarios simulator fakes reports

bench: $(BIN)/blastradius
	$(BIN)/python benchmarks/core_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
