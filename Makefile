# gatewaycerts — `make run` serves on http://127.0.0.1:8080 with the embedded store; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# pkilint (the independent RFC 5280 linter of tests/conformance) pins its own dependencies: own venv.
PKILINT_VENV := .cache/pkilint-venv
PKILINT_STAMP := $(PKILINT_VENV)/.installed

.PHONY: install run test lint openapi ferretdb bench clean conformance-venv

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

# The test extras include Huawei's ROMA SDK (client-compatibility test), whose core pins pymongo==4.18.2;
# `make run` installs only the service's own dependencies.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

run: install
	$(BIN)/gatewaycerts serve

$(PKILINT_STAMP):
	$(PYTHON) -m venv $(PKILINT_VENV)
	$(PKILINT_VENV)/bin/pip install --quiet 'pkilint>=0.13,<0.14'
	touch $(PKILINT_STAMP)

conformance-venv: $(PKILINT_STAMP)

lint: $(TEST_STAMP)
	$(BIN)/ruff check gatewaycerts tests bench deploy
	$(BIN)/ruff format --check gatewaycerts tests bench deploy
	$(BIN)/lint-imports

test: lint $(PKILINT_STAMP)
	$(BIN)/pytest -q

openapi: install
	$(BIN)/gatewaycerts openapi --output schemas

ferretdb:
	bash tests/ferretdb/build.sh

# The real service with each store, driven from another process (bench/loadgen, Go), against in-process
# limits measured in the same run; appends its table to docs/performance.md. Never part of `make test`.
bench: install
	$(BIN)/python bench/bench_key_check.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bench_kek_rotation.py
	$(BIN)/python bench/bench_delivery.py
	$(BIN)/python bench/bench_ocsp.py
	$(BIN)/python bench/bench_floor.py
	$(BIN)/python bench/bench_peer.py
	$(BIN)/python bench/bench_acme.py
	$(BIN)/python bench/bench_renewal.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache *.egg-info

# Offline check of the Helm chart (deploy/helm): Helm's Go SDK through helm-python-sdk (no helm binary) for
# lint and rendering, kubernetes-validate for the Kubernetes schemas. Pinned in its own venv.
HELM_VENV := .cache/helm-venv
HELM_STAMP := $(HELM_VENV)/.installed

.PHONY: helm-check

$(HELM_STAMP): deploy/helm/requirements.txt
	$(PYTHON) -m venv $(HELM_VENV)
	$(HELM_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/helm/requirements.txt
	touch $(HELM_STAMP)

helm-check: $(HELM_STAMP)
	$(HELM_VENV)/bin/python deploy/helm/check.py

# Build the image the chart deploys with podman (--isolation=chroot) on a local debootstrap Debian base, then
# check it against the rendered chart and start it as the image says (deploy/image/check.py). Needs root.
.PHONY: image-check

image-check: $(HELM_STAMP)
	bash deploy/image/image-check.sh
