# The two commands: `make run` (local API on 127.0.0.1:8000) and `make test` (everything CI runs).
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

.PHONY: run test lint unit bench clean dynamodb-local

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

unit: $(VENV)/.installed
	scripts/with-moto.sh $(CARGO) test --workspace --all-features

# moto on 127.0.0.1:5005 with the OTP table; prints the environment for `make run`.
dynamodb-local: $(VENV)/.installed
	$(VENV)/bin/python scripts/dynamodb_local.py

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
	rm -rf .venv
