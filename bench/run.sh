#!/usr/bin/env bash
# `make bench`: throughput and latency of POST /verify-code for random unknown users (the 404
# path), against a minimal axum endpoint doing the same JSON parse + 404, in the same run
# (wrk -t1 -c32 -d10s, loopback only); the send path under DynamoDB's contention
# (bench/contention.py); then the Lambda binaries' size, init time and memory
# (bench/lambda_init.py). Results in bench-results/ and on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
OUT=bench-results
mkdir -p "$OUT"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)..."
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi

cargo build --release --bin otp-service --example bench_baseline --example bench_caller_check

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME COMMAND...: runs it on a free port and sets URL from the line it prints.
start() {
  local name=$1; shift
  PORT=0 "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  pids+=($!)
  URL=$(python3 scripts/peers.py url "$OUT/$name.stdout" "$!") \
    || { echo "$name did not start:"; cat "$OUT/$name.stderr"; exit 1; }
}

# measure NAME [SCRIPT]: wrk against $URL; prints "req/s p99_us non-2xx".
measure() {
  local name=$1 script=${2:-bench/verify_unknown.lua}
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$URL" >"$OUT/$name.wrk"
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/$name.wrk")
  p99=$(awk '/^p99_us/ {print $2}' "$OUT/$name.wrk")
  non2xx=$(awk '/^non2xx_3xx/ {print $2}' "$OUT/$name.wrk")
  echo "$rps $p99 $non2xx"
}

start baseline target/release/examples/bench_baseline
read -r base_rps base_p99 _ < <(measure baseline)
cleanup; pids=()

OTP_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
  start service target/release/otp-service
grep -q "in-memory" "$OUT/service.stdout" || { echo "service is not on the memory store"; exit 1; }
read -r svc_rps svc_p99 _ < <(measure service)
# The unknown-user path must really be answered 404 by the service, not fail in some other way.
curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/verify-code" -H 'content-type: application/json' \
  -d '{"user_id":"bench-check","passcode":"123456"}' | grep -qx 404

cleanup; pids=()

# The same with an API key on every request (OTP_CALLER_AUTH=api_key, three keys configured).
export BENCH_API_KEY=otpk_bench-key-0123456789abcdefghijklmnopqrstuv
OTP_API_KEYS="old=otpk_bench-old-0123456789abcdefghijklmnopqrst,mailer=otpk_bench-mailer-0123456789abcdefghijklmno:send,bench=$BENCH_API_KEY" \
  OTP_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
  start keyed target/release/otp-service
grep -q "caller auth: api_key" "$OUT/keyed.stdout" || { echo "service is not keyed"; exit 1; }
read -r key_rps key_p99 _ < <(measure keyed)
unset BENCH_API_KEY
cleanup; pids=()

# The send path (console delivery, codes to a file) with every send limit charged: random users,
# numbers and client addresses, so the per-subject caps rarely bind; the SMS budget and country
# caps are raised out of the way (still charged). Then the same with every counter off.
OTP_SMS_DAILY_BUDGET=100000000 OTP_SMS_COUNTRY_SENDS_PER_DAY=100000000 \
  OTP_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
  start send_limits target/release/otp-service
read -r send_rps send_p99 send_non2xx < <(measure send_limits bench/send_random.lua)
cleanup; pids=()
# The same with the fraud guard off (it is on by default: a ConditionCheck per breaker item in
# the send's write, and the in-process counting of each send).
OTP_FRAUD_GUARD=off OTP_SMS_DAILY_BUDGET=100000000 OTP_SMS_COUNTRY_SENDS_PER_DAY=100000000 \
  OTP_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
  start send_unguarded target/release/otp-service
read -r ung_rps ung_p99 ung_non2xx < <(measure send_unguarded bench/send_random.lua)
cleanup; pids=()
OTP_SMS_DAILY_BUDGET=0 OTP_SMS_COUNTRY_SENDS_PER_DAY=0 OTP_DESTINATION_SENDS_PER_10_MINUTES=0 \
  OTP_DESTINATION_SENDS_PER_DAY=0 OTP_USER_SENDS_PER_HOUR=0 OTP_CLIENT_IP_SENDS_PER_HOUR=0 \
  OTP_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
  start send_open target/release/otp-service
read -r open_rps open_p99 open_non2xx < <(measure send_open bench/send_random.lua)
cleanup; pids=()

python3 - "$base_rps" "$base_p99" "$svc_rps" "$svc_p99" "$key_rps" "$key_p99" \
  "$send_rps" "$send_p99" "$send_non2xx" "$open_rps" "$open_p99" "$open_non2xx" \
  "$ung_rps" "$ung_p99" "$ung_non2xx" <<'PY' | tee "$OUT/summary.txt"
import sys
(base_rps, base_p99, svc_rps, svc_p99, key_rps, key_p99, send_rps, send_p99, send_non2xx,
 open_rps, open_p99, open_non2xx, ung_rps, ung_p99, ung_non2xx) = map(float, sys.argv[1:])
print(f"baseline axum JSON parse + 404 : {base_rps:10.0f} req/s  p99 {base_p99/1000:.3f} ms")
print(f"otp-service /verify-code (404) : {svc_rps:10.0f} req/s  p99 {svc_p99/1000:.3f} ms")
print(f"  same with an API key         : {key_rps:10.0f} req/s  p99 {key_p99/1000:.3f} ms")
print(f"/send-code sms, limits charged : {send_rps:10.0f} req/s  p99 {send_p99/1000:.3f} ms"
      f"  ({send_non2xx:.0f} not 200; {send_rps / svc_rps:.0%} of verify-unknown)")
print(f"  same, fraud guard off        : {ung_rps:10.0f} req/s  p99 {ung_p99/1000:.3f} ms"
      f"  ({ung_non2xx:.0f} not 200; guard on = {send_rps / ung_rps:.0%} of off)")
print(f"/send-code sms, counters off   : {open_rps:10.0f} req/s  p99 {open_p99/1000:.3f} ms"
      f"  ({open_non2xx:.0f} not 200)")
ratio = svc_rps / base_rps
print(f"ratio {ratio:.1%} (target >= 80%), p99 target <= 1.5 ms: "
      f"{'OK' if ratio >= 0.8 and svc_p99 <= 1500 else 'BELOW TARGET'}")
PY

target/release/examples/bench_caller_check | tee -a "$OUT/summary.txt"

# The send path under DynamoDB's contention (moto's contention mode): sends/s and conflicts per
# send at a few concurrency levels. BENCH_CONTENTION_BEFORE=<an older otp-service binary> adds
# its rows beside this build's, in the same run.
.venv/bin/python bench/contention.py ${BENCH_CONTENTION_BEFORE:-} target/release/otp-service \
  | tee -a "$OUT/summary.txt"

# Lambda binaries: size, init time, first response, peak RSS (same release profile).
# One invocation per function, as `sam build` does: features are then resolved per function, so
# verify-code is built without the delivery features send-code enables.
cargo build --release -p send-code
cargo build --release -p verify-code
cargo build --release -p fraud-guard
cargo build --release --example hello_lambda
.venv/bin/python scripts/with_moto.py .venv/bin/python bench/lambda_init.py | tee -a "$OUT/summary.txt"
