#!/usr/bin/env bash
# schemathesis.sh [memory|dynamodb]...: runs schemathesis (all checks) against the local server
# binary with the committed openapi.json, on the in-memory store and/or on DynamoDB (moto; run
# inside scripts/with_moto.py). Each run must generate at least MIN_CASES cases and fail none.
set -euo pipefail
cd "$(dirname "$0")/.."

MIN_CASES=${MIN_CASES:-1000}
MAX_EXAMPLES=${MAX_EXAMPLES:-400}
SERVER=target/debug/otp-service
ST=.venv/bin/schemathesis
[ -x "$ST" ] || { echo "schemathesis.sh: $ST missing; 'make test' installs it" >&2; exit 1; }
# The binary `cargo test --workspace --all-features` builds (with the dev-dependencies' features;
# a plain `cargo build --bin` would rebuild a dozen crates without them): a no-op after
# `make test`'s own build, and never a stale binary.
cargo test --quiet --workspace --all-features --no-run
mkdir -p target/schemathesis

SERVER_PID=
stop_server() { [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }; SERVER_PID=; }
trap stop_server EXIT

run() {
  local store=$1 log=target/schemathesis/$1
  # As deployed: the backend routes need an API key (schemathesis sends it, and also checks that
  # requests without it are refused).
  local key
  key=otpk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
  local -a env=(PORT=0 OTP_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') RUST_LOG=warn
                OTP_API_KEYS=schemathesis=$key)
  if [ "$store" = dynamodb ]; then
    [ -n "${AWS_ENDPOINT_URL:-}" ] || { echo "schemathesis.sh: dynamodb needs moto (scripts/with_moto.py)" >&2; exit 1; }
    local table=otp-schemathesis-$$
    .venv/bin/python scripts/otp_aws.py "$table"
    env+=(OTP_TABLE_NAME=$table)
  fi
  env "${env[@]}" "$SERVER" >"$log.server.out" 2>"$log.server.err" &
  SERVER_PID=$!
  local url
  url=$(python3 scripts/peers.py url "$log.server.out" "$SERVER_PID") \
    || { echo "server did not start:"; cat "$log.server.err"; exit 1; }
  grep -q "store: $( [ "$store" = dynamodb ] && echo DynamoDB || echo in-memory)" "$log.server.out"

  echo "schemathesis: $store store at $url"
  set +e
  "$ST" run openapi.json --url "$url" --checks all --max-examples "$MAX_EXAMPLES" \
    --header "Authorization: Bearer $key" \
    --no-color >"$log.txt" 2>&1
  local status=$?
  set -e
  stop_server
  tail -n 25 "$log.txt"
  [ "$status" -eq 0 ] || { echo "schemathesis ($store) failed: see $log.txt"; exit 1; }
  local cases
  cases=$(grep -oE '^ *[0-9]+ generated' "$log.txt" | grep -oE '[0-9]+' | tail -1)
  if [ -z "$cases" ] || [ "$cases" -lt "$MIN_CASES" ]; then
    echo "schemathesis ($store): ${cases:-no} cases generated, at least $MIN_CASES required"; exit 1
  fi
  echo "schemathesis ($store): $cases cases, no failures"
  TOTAL=$((TOTAL + cases))
}

TOTAL=0
for store in "${@:-memory}"; do run "$store"; done
echo "schemathesis: $TOTAL passed, 0 failed"
