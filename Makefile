# Tollgate developer entry points. `make help` lists them.
#
# Tests run with .tools/bin first on PATH so they use the real helm and
# kubectl that `make deps` installs there.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: help run test lint fmt crds bench deps clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-6s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## build and start the quickstart (echo backends + gateway on 127.0.0.1:8080)
	scripts/quickstart.sh

test: deps ## build the binaries, then run every test (nextest when installed)
	$(CARGO) build --workspace --bins
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace; \
	else \
	  $(CARGO) test --workspace; \
	fi

lint: ## check formatting and run clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format all code
	$(CARGO) fmt --all

crds: ## regenerate the CRD YAML in crds/generated/ from the Rust types
	$(CARGO) run -p tollgate-crds --features generate --bin crdgen

bench: ## Tollgate vs nginx and HAProxy (release builds, pinned CPUs); report in bench/results/<date>/
	scripts/install-deps.sh bench
	$(CARGO) build --release --bins -p tollgate-dataplane -p tollgate-controller -p tollgate-bench
	taskset -c 1 target/release/tollgate-bench run

deps: ## install test tools: curl, nginx, haproxy, wrk, fonts; helm + kubectl into .tools/bin
	scripts/install-deps.sh test

clean: ## remove build output and .tools
	$(CARGO) clean
	rm -rf .tools
