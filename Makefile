# recmatch — `make run` sets everything up and runs it; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_COUNT ?= 5000
DEMO_DATA := var/demo-candidates-$(DEMO_COUNT).jsonl.gz
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup es-up es-down demo-data load-demo run test unit integration lint bench-reindex bench-scale clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create the virtualenv and install recmatch with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

es-up: setup  ## start (or reuse) the local Elasticsearch node on 127.0.0.1:9200 (NODES=3: a 3-node cluster)
	$(BIN)/recmatch es up --nodes $${NODES:-1}

es-down: setup  ## stop the local Elasticsearch node
	$(BIN)/recmatch es down

$(DEMO_DATA): | setup
	mkdir -p var
	$(BIN)/python scripts/generate_candidates.py --source demo --count $(DEMO_COUNT) --seed 7 --out $@

demo-data: $(DEMO_DATA)  ## generate the demo candidate pool (var/)

load-demo: es-up demo-data  ## reindex the demo candidates into the local node
	$(BIN)/recmatch reindex --source $(DEMO_DATA) --rejects var/demo.rejects.jsonl

run: es-up demo-data  ## local Elasticsearch + demo data + a demo tenant, then the API on 127.0.0.1:8000
	$(BIN)/recmatch demo --source $(DEMO_DATA)

$(CHROMIUM):  # Debian's Chromium for the browser tests (Playwright never downloads a browser here)
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium

test: setup $(CHROMIUM)  ## all tests; they start the local Elasticsearch node themselves when none answers
	$(BIN)/pytest $(PYTEST_ARGS)

unit: setup  ## unit tests only (no Elasticsearch)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: setup  ## ruff over the code, scripts and tests
	$(BIN)/ruff check src scripts tests

integration: setup  ## integration tests only
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

bench-reindex: es-up  ## benchmark: recmatch reindex vs a default streaming_bulk (DOCS=1000000)
	$(BIN)/python scripts/bench_reindex.py --docs $${DOCS:-1000000}

bench-scale: es-up  ## benchmark: the cost curve at 100k, 1M and 5M candidates (SIZES=...), plot in docs/scale.png
	$(BIN)/pip install --quiet -e ".[test,bench]"
	nice $(BIN)/python scripts/bench_scale.py --sizes $${SIZES:-100000,1000000,5000000}

clean:  ## remove the virtualenv and generated data (not the Elasticsearch cache)
	rm -rf $(VENV) var
