# One entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
GI_CACHE ?= $(HOME)/.cache/globalingress
export CARGO_TARGET_DIR ?= $(GI_CACHE)/target

.PHONY: help test demo deps env-up env-down env-status lint fmt build crds bench

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

test: ## everything CI checks: deps, fmt, clippy, deny, unit and integration tests (real servers)
	@bash tests/test.sh

demo: ## local environment + globalingress run against the hub; prints where everything is
	@bash tests/demo.sh

bench: ## benchmarks: DNS engine at scale (SIZES=100,1000,10000) and failover p50/p95/p99 (FAILOVER_SIZES=1,100,1000), provisioning (PROVISION_SIZES=100); SCENARIOS=peers: beside external-dns (PEERS_SIZE=1000); prints tables
	@bash tests/bench.sh

deps: ## install what the tests need (knot, moto venv, cargo-deny, kube-apiserver harness)
	@bash tests/env/install.sh

env-up: deps ## start hub + spoke-a + spoke-b API servers, moto and Knot (.run/env); safe to re-run
	@bash tests/env/env.sh up

env-down: ## stop everything env-up and demo started
	@bash tests/env/env.sh down

env-status: ## print the endpoints of the running environment
	@bash tests/env/env.sh status

lint: ## fmt check, clippy -D warnings, cargo deny
	cargo fmt --all --check
	cargo clippy --locked --all-targets -- -D warnings
	@bash tests/deny.sh

fmt: ## format the code
	cargo fmt --all

build: ## build the globalingress binary
	cargo build --locked --bin globalingress

crds: ## regenerate crds/ and the Helm chart's copy from the Rust API types (make test fails when they are stale)
	cargo run --locked -q --bin globalingress -- crds --dir crds
	cargo run --locked -q --bin globalingress -- crds --dir deploy/globalingress/crds
