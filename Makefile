# Two commands for a fresh machine: `make demo` (the main job on the embedded broker) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 9092

.PHONY: demo test lint broker bench data clean

# Setup steps stay off stdout (1>&2), so `make demo > report.json` holds only the JSON report.
$(BIN)/python:
	@echo "creating $(VENV) with $(PYTHON)" 1>&2
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip 1>&2

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	@echo "installing requirements.txt into $(VENV)" 1>&2
	@$(BIN)/python -m pip install --quiet -r requirements.txt 1>&2
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	@echo "installing requirements-dev.txt into $(VENV)" 1>&2
	@$(BIN)/python -m pip install --quiet -r requirements-dev.txt 1>&2
	@touch $@ $(VENV)/.runtime

## demo: venv, install, embedded broker, replay at full speed, allocator, JSON on stdout, broker stopped
demo: $(VENV)/.runtime
	@$(BIN)/python -m allocator.cli.demo

## test: lint, type check, then every test (Kafka tests start their own brokers)
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## broker: the embedded Kafka broker (Tansu) on 127.0.0.1:$(PORT), foreground until Ctrl-C
broker: $(VENV)/.runtime
	$(BIN)/python -m allocator.broker --port $(PORT)

## bench: every benchmark, figures from one run
bench: $(VENV)/.dev
	$(BIN)/python -m bench

## data: regenerate data/l1_day.csv.gz byte for byte
data: $(VENV)/.runtime
	$(BIN)/python -m allocator.synth --out data/l1_day.csv.gz

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
