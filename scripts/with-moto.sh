#!/usr/bin/env bash
# with-moto.sh COMMAND...: runs COMMAND with a moto server (DynamoDB, SES, Secrets Manager) on a
# free loopback port, pointed at by AWS_ENDPOINT_URL, and stops that server by PID afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
if ! "$PYTHON" -c 'import moto.server' 2>/dev/null; then
  echo "with-moto: moto is not installed in .venv; 'make test' installs it" >&2
  exit 1
fi
mkdir -p target
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# One request at a time, like DynamoDB's per-item atomicity: see scripts/moto_server.py.
"$PYTHON" scripts/moto_server.py 127.0.0.1 "$PORT" >target/moto.log 2>&1 &
MOTO_PID=$!
stop_moto() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
trap stop_moto EXIT

for _ in $(seq 150); do
  if ! kill -0 "$MOTO_PID" 2>/dev/null; then
    echo "with-moto: moto exited during start-up:" >&2; cat target/moto.log >&2; exit 1
  fi
  if python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$PORT/moto-api/reset', data=b'', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/moto-api/reset', data=b'', timeout=2)" \
  || { echo "with-moto: moto did not answer on port $PORT" >&2; cat target/moto.log >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_DYNAMODB 2>/dev/null || true
echo "with-moto: moto (pid $MOTO_PID) on $AWS_ENDPOINT_URL"
"$@"
