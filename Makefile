# gatewaycerts — `make run` serves on http://127.0.0.1:8080 with the embedded store; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint openapi ferretdb bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/gatewaycerts serve

lint: install
	$(BIN)/ruff check gatewaycerts tests bench
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

openapi: install
	$(BIN)/gatewaycerts openapi --output schemas

ferretdb:
	bash tests/ferretdb/build.sh

bench: install
	$(BIN)/python bench/bench_key_check.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache *.egg-info
