# Everything a person can do with this project. `make` (or `make help`) lists the targets.
#
# Tools come into project-local, git-ignored folders, at pinned versions, and only once:
#   .venv/         Python tools: requirements.txt (tests), requirements-deploy.txt (build/deploy)
#   node_modules/  dynalite, a DynamoDB-compatible server for the tests (package-lock.json)
# Each install is a stamp file that depends on its lock/requirements files, so a second run
# installs nothing unless those files changed.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
TEST_TOOLS := $(VENV)/.installed-requirements
DEPLOY_TOOLS := $(VENV)/.installed-requirements-deploy
E2E_TOOLS := $(VENV)/.installed-requirements-e2e
# Debian packages of the browser test: the browser, its driver, fonts for Chinese and emoji.
E2E_PACKAGES := chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji
NODE_TOOLS := node_modules/.installed-package-lock
LAMBDA_TARGET := aarch64-unknown-linux-gnu

# Tools installed into .venv (cargo-lambda, zig, sam, cfn-lint) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
# `sam build` with BuildMethod rust-cargolambda is a SAM CLI beta feature: opt in.
export SAM_CLI_BETA_RUST_CARGO_LAMBDA := 1

# Bootstrap size budgets (bytes): verify answers WeChat within 5 s, cold starts included. Since
# the secrets moved to Secrets Manager, verify links its client and rustls (about 5 MB, was 2.3);
# message links the AWS SDK for forward rules and shares the other functions' budget.
WEBHOOK_MAX_BYTES := 6291456
OTHER_MAX_BYTES := 8388608

.PHONY: help run test e2e build bench coldstart validate deploy fmt lint clean \
	fmt-check unit-tests interop-test lint-template tools deploy-tools e2e-tools browser lambda-target

help: ## List the targets
	@echo "Usage: make <target>"
	@grep -E '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN { FS = ":.*## " } { printf "  %-13s %s\n", $$1, $$2 }'

run: ## Serve every function on http://localhost:3000 (`wx serve`: embedded store; reads .env)
	cargo run -p wx -- serve

test: tools ## fmt check, clippy, all tests (DynamoDB ones on dynalite), wechatpy interop, cfn-lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	# One build of every target with the tests' features (dev-dependencies such as tokio's
	# test-util change the dependency graph): the tests and the interop binaries (verify, message,
	# wx) share it, instead of a second build of the binaries without those features.
	cargo build --workspace --all-targets --all-features
	node scripts/with-dynalite.mjs cargo test --workspace --all-features
	LOCAL_BIN=target/debug/wx $(VENV_PY) -m pytest -q tests/interop
	scripts/lint-template.sh template.yaml

e2e: e2e-tools ## Browser end to end (headless Chromium): sign-in, /demo profile, wx.config ready, error pages; screenshots in target/e2e/
	cargo build -p wx
	$(VENV_PY) -m pytest -q tests/e2e

build: deploy-tools lambda-target ## Build every function for Lambda (arm64, release); check bootstrap sizes
	cargo lambda build --release --arm64
	scripts/check-bootstrap-sizes.sh target/lambda $(WEBHOOK_MAX_BYTES) $(OTHER_MAX_BYTES)

bench: ## Run the criterion benchmarks of the shared crate
	cargo bench -p account

coldstart: tools ## Cold start, warm latency and peak RSS of verify, message (plain variables, the stack's secret in moto, forward rules) and api under a local Lambda Runtime API
	cargo build --release -p verify -p message -p api
	node scripts/with-dynalite.mjs $(PYTHON) scripts/coldstart.py verify=target/release/verify \
		verify-secret=target/release/verify message=target/release/message \
		message-secret=target/release/message message-forward=target/release/message \
		api=target/release/api

validate: tools deploy-tools ## Validate template.yaml offline: sam validate --lint and cfn-lint
	AWS_DEFAULT_REGION=us-east-1 sam validate --lint --template template.yaml
	scripts/lint-template.sh template.yaml

deploy: deploy-tools lambda-target ## sam build, then sam deploy (--guided the first time)
	sam build --template template.yaml
	if [ -f samconfig.toml ]; then sam deploy; else sam deploy --guided; fi

fmt: ## Format all Rust code
	cargo fmt --all

lint: ## Clippy on every crate and target, warnings as errors
	cargo clippy --workspace --all-targets --all-features -- -D warnings

clean: ## Remove Lambda build outputs (target/lambda, .aws-sam); keeps the cargo cache and tools
	rm -rf target/lambda .aws-sam

# --- tool installs ----------------------------------------------------------------------------

tools: $(TEST_TOOLS) $(NODE_TOOLS) ## Install the test tools: .venv (pytest, wechatpy, cfn-lint), node_modules (dynalite)

e2e-tools: browser $(E2E_TOOLS) ## Install what make e2e needs: Debian's chromium, chromium-driver and CJK/emoji fonts (apt, only if missing), selenium

deploy-tools: $(DEPLOY_TOOLS) ## Install sam, cargo-lambda and zig into .venv/bin (for a deploy by hand)

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

$(TEST_TOOLS): requirements.txt tests/interop/requirements.txt | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(DEPLOY_TOOLS): requirements-deploy.txt | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check -q -r requirements-deploy.txt
	touch $@

$(E2E_TOOLS): tests/e2e/requirements.txt | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check -q -r tests/e2e/requirements.txt
	touch $@

# apt-get only when a package is missing (CI and developers run as root here; no browser
# download works, so the browser and its driver come from Debian). Not echoed: it says what it
# installs, and nothing when everything is there.
browser:
	@missing=$$(for p in $(E2E_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

$(NODE_TOOLS): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

tests/interop/requirements.txt:
	@echo "missing $@: it comes with the wechatpy interop test (tests/interop/)" >&2
	@exit 1

# The Rust standard library for the Lambda target (cargo-lambda links with zig, but std for
# the target comes from rustup).
lambda-target:
	rustup target list --installed | grep -x $(LAMBDA_TARGET) >/dev/null || rustup target add $(LAMBDA_TARGET)
