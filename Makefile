# The two commands: `make run` (local API on 127.0.0.1:8000) and `make test` (everything CI runs).
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

.PHONY: run test lint unit browser browser-deps deploy-checks bench clean dynamodb-local openapi metrics lambda-watch

run:
	$(CARGO) run --bin otp-service

test: lint unit browser deploy-checks

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Test peers from PyPI into a project-local virtualenv; redone when the pins change.
$(VENV)/.installed: requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

# One moto for everything: cargo's tests, schemathesis on both stores, then the Lambda binaries
# under cargo lambda watch.
unit: $(VENV)/.installed
	PROPTEST_CASES=5000 .venv/bin/python scripts/with_moto.py bash -c '$(CARGO) test --workspace --all-features \
	  && scripts/schemathesis.sh memory dynamodb && $(VENV)/bin/python scripts/lambda_e2e.py'

# The local server's /demo and /docs in headless Chromium, on the binary `unit` built. Debian's
# chromium and chromium-driver come from the package registry the first time (root, or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    chromium chromium-driver; fi

browser: $(VENV)/.installed browser-deps
	test -x target/debug/otp-service || $(CARGO) build --workspace --all-features --bin otp-service
	$(VENV)/bin/python tests/browser_test.py target/debug/otp-service

# The deployment, checked offline: lint, validate, template properties, and a real `sam build`.
SAM_ENV := SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
deploy-checks: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) sam validate --lint --region us-east-1
	$(VENV)/bin/python -m unittest -v tests/template_test.py tests/architecture_test.py
	$(SAM_ENV) sam build
	test -x .aws-sam/build/SendCodeFunction/bootstrap
	test -x .aws-sam/build/VerifyCodeFunction/bootstrap
	$(VENV)/bin/python -m unittest -v tests/artifacts_test.py

# moto on 127.0.0.1:5005 with the OTP table; prints the environment for `make run`.
dynamodb-local: $(VENV)/.installed
	$(VENV)/bin/python scripts/dynamodb_local.py

# Regenerates the committed API document (a test fails when it is stale).
openapi:
	$(CARGO) run --quiet --bin otp-service -- openapi > openapi.json

# Regenerates the committed metric catalogue that template.yaml's alarms are checked against.
metrics:
	$(CARGO) run --quiet --bin otp-service -- metrics > metrics.json

# The Lambda binaries under cargo lambda, against `make dynamodb-local`.
lambda-watch: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda watch --env-file lambda.env

bench: $(VENV)/.installed
	bash bench/run.sh

clean:
	$(CARGO) clean
	rm -rf .venv
