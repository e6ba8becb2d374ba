# The two commands: `make run` (local API on 127.0.0.1:8000) and `make test` (everything CI runs).
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

node-deps-marker := docs/examples/node_modules/.package-lock.json

.PHONY: node-deps run test lint unit docs-examples browser browser-deps deploy-checks template-checks sam-build artifacts bench clean dynamodb-local openapi metrics settings-docs deploy-docs lambda-watch

# The local AWS and Twilio stand-ins of `make dynamodb-local`, and where `make lambda-watch`
# finds them: their ports are set here and nowhere else.
MOTO_PORT ?= 5005
TWILIO_FAKE_PORT ?= 5006

run:
	$(CARGO) run --bin otp-service

# Everything CI runs. The arm64 `sam build` (release, LTO: the longest single step) runs in the
# background from the moment the tests' own build is done, beside the suites that mostly wait on
# moto, servers and a browser; its log is target/sam-build.log. It is stopped, by its process
# group, if the make is interrupted.
test: lint $(VENV)/.installed browser-deps node-deps
	$(CARGO) test --workspace --all-features --no-run --quiet
	@mkdir -p target; status=0; \
	setsid -w $(MAKE) --no-print-directory sam-build > target/sam-build.log 2>&1 & build=$$!; \
	trap 'kill -- -$$build 2>/dev/null' INT TERM; \
	$(MAKE) --no-print-directory unit docs-examples browser template-checks || status=$$?; \
	echo "make test: waiting for the background sam build (target/sam-build.log)"; \
	wait $$build || { tail -n 40 target/sam-build.log; status=1; }; \
	[ $$status -eq 0 ] && $(MAKE) --no-print-directory artifacts

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Test peers from PyPI into a project-local virtualenv; redone when the pins change. Local
# development needs only the small set (moto, cargo-lambda).
$(VENV)/.installed: requirements-test.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@ $(VENV)/.dev-installed

$(VENV)/.dev-installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# One moto for everything: cargo's tests, schemathesis on both stores, then the Lambda binaries
# under cargo lambda watch.
unit: $(VENV)/.installed node-deps
	PROPTEST_CASES=5000 .venv/bin/python scripts/with_moto.py bash -c '$(CARGO) test --workspace --all-features \
	  && scripts/schemathesis.sh memory dynamodb && $(VENV)/bin/python scripts/lambda_e2e.py'
	$(VENV)/bin/python -m unittest -v tests/moto_contention_test.py tests/webhooks_test.py \
	  tests/send_hook_test.py

# The shell examples of README.md and docs/api.md, run in order against the server binary.
# The server binary is the one the tests build (see scripts/schemathesis.sh).
docs-examples: $(VENV)/.installed
	$(CARGO) test --quiet --workspace --all-features --no-run
	$(VENV)/bin/python tests/doc_examples_test.py target/debug/otp-service

# The local server's /demo, /docs and /redoc in headless Chromium, on the binary `unit` built.
# Debian's chromium and chromium-driver come from the package registry the first time (root, or
# sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    chromium chromium-driver; fi

# The send hook's Node receiver example's one dependency, from the npm registry (its lock file).
node-deps: $(node-deps-marker)
$(node-deps-marker): docs/examples/package.json docs/examples/package-lock.json
	npm ci --prefix docs/examples --no-audit --no-fund --loglevel=error

browser: $(VENV)/.installed browser-deps
	$(CARGO) test --quiet --workspace --all-features --no-run
	$(VENV)/bin/python tests/browser_test.py target/debug/otp-service

# The deployment, checked offline: lint, validate, template properties (the Rules evaluated),
# then a real `sam build` and what it produced. `deploy-checks` runs them in a row.
SAM_ENV := SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
deploy-checks: template-checks sam-build artifacts

template-checks: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) sam validate --lint --region us-east-1
	$(VENV)/bin/python -m unittest -v tests/template_test.py tests/architecture_test.py

sam-build: $(VENV)/.installed
	$(SAM_ENV) sam build
	test -x .aws-sam/build/SendCodeFunction/bootstrap
	test -x .aws-sam/build/VerifyCodeFunction/bootstrap
	test -x .aws-sam/build/FraudGuardFunction/bootstrap

artifacts: $(VENV)/.installed
	$(VENV)/bin/python -m unittest -v tests/artifacts_test.py

# moto on 127.0.0.1:$(MOTO_PORT) with the OTP table, and the Twilio fake on $(TWILIO_FAKE_PORT)
# (it prints what it is asked to send); prints the environment for `make run`.
dynamodb-local: $(VENV)/.dev-installed
	MOTO_PORT=$(MOTO_PORT) TWILIO_FAKE_PORT=$(TWILIO_FAKE_PORT) $(VENV)/bin/python scripts/dynamodb_local.py

# Regenerates the committed API document (a test fails when it is stale).
openapi:
	$(CARGO) run --quiet --bin otp-service -- openapi > openapi.json

# Regenerates the committed metric catalogue that template.yaml's alarms are checked against.
metrics:
	$(CARGO) run --quiet --bin otp-service -- metrics > metrics.json

# Regenerates the configuration reference from the settings catalogue (a test fails when stale).
settings-docs:
	$(CARGO) run --quiet --bin otp-service -- settings > docs/configuration.md

# Regenerates the parameter and output tables of docs/deployment.md from template.yaml.
deploy-docs: $(VENV)/.installed
	$(VENV)/bin/python scripts/deploy_docs.py --write

# The Lambda binaries under cargo lambda on 127.0.0.1:9000, against `make dynamodb-local`.
lambda-watch: $(VENV)/.dev-installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda watch --invoke-address 127.0.0.1 \
	  --env-file lambda.env --env-var AWS_ENDPOINT_URL=http://127.0.0.1:$(MOTO_PORT) \
	  --env-var TWILIO_API_BASE_URL=http://127.0.0.1:$(TWILIO_FAKE_PORT)

bench: $(VENV)/.installed
	bash bench/run.sh

clean:
	$(CARGO) clean
	rm -rf .venv
