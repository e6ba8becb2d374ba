# The two commands: `make run` (local API on 127.0.0.1:8000) and `make test` (everything CI runs).
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

.PHONY: run test lint unit bench clean dynamodb-local openapi

run:
	$(CARGO) run --bin otp-service

test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Test peers from PyPI into a project-local virtualenv; redone when the pins change.
$(VENV)/.installed: requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

# One moto for everything: cargo's tests, then schemathesis on both stores.
unit: $(VENV)/.installed
	PROPTEST_CASES=5000 scripts/with-moto.sh bash -c '$(CARGO) test --workspace --all-features && scripts/schemathesis.sh memory dynamodb'

# moto on 127.0.0.1:5005 with the OTP table; prints the environment for `make run`.
dynamodb-local: $(VENV)/.installed
	$(VENV)/bin/python scripts/dynamodb_local.py

# Regenerates the committed API document (a test fails when it is stale).
openapi:
	$(CARGO) run --quiet --bin otp-service -- openapi > openapi.json

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
	rm -rf .venv
