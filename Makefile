# The two commands: `make run` (local API on 127.0.0.1:8000) and `make test` (everything CI runs).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test lint unit bench clean

run:
	$(CARGO) run --bin otp-service

test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --workspace --all-features

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
	rm -rf .venv
