#!/usr/bin/env python3
"""`bench/contention.py BINARY...`: the send path under DynamoDB's contention, as the moto
wrapper's contention mode plays it (MOTO_CONTENTION_COMMIT_MS: a transaction holds its items
while it commits; another touching one of them is cancelled). Each local server binary (on the
DynamoDB store, a fresh table, the fraud guard off so only the send limits' counters are in the
transaction, country and budget caps far away) takes concurrent SMS sends to one country (random
UK mobiles) for BENCH_SECONDS at each concurrency; reported: codes sent per second, answers that
were not 200, and transactions moto cancelled for a conflict, per send. Give the binary of the
commit before a change and after it to compare them in one run."""
import json
import os
import pathlib
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import otp_aws  # noqa: E402
import peers  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
COMMIT_MS = int(os.environ.get("BENCH_COMMIT_MS", "15"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "4,16,32").split(",")]


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def run(binary, endpoint, moto_log, concurrency):
    table = f"contention-{os.getpid()}-{random.randrange(1 << 30)}"
    otp_aws.create_table(endpoint, table)
    out = ROOT / "target" / "bench-contention.out"
    env = dict(os.environ, PORT="0", OTP_TABLE_NAME=table, AWS_ENDPOINT_URL=endpoint,
               AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               OTP_HASH_KEY=os.urandom(32).hex(), OTP_FRAUD_GUARD="off", RUST_LOG="error",
               OTP_SMS_DAILY_BUDGET="100000000", OTP_SMS_COUNTRY_SENDS_PER_DAY="100000000")
    with open(out, "w") as stdout:
        server = subprocess.Popen([binary], env=env, stdout=stdout, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        url = subprocess.run([sys.executable, str(ROOT / "scripts" / "peers.py"), "url", str(out),
                              str(server.pid)], capture_output=True, text=True, check=True).stdout.strip()
        refused_before = moto_log.read_text().count("contention:")
        statuses = []
        deadline = time.monotonic() + SECONDS

        def client(seed):
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                phone = f"+44771{rng.randrange(10000):04d}{rng.randrange(1000):03d}"
                body = {"user_id": f"u{rng.randrange(1 << 40)}", "method": "sms", "phone": phone}
                statuses.append(post(f"{url}/send-code", body))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - started
        conflicts = moto_log.read_text().count("contention:") - refused_before
        sent = statuses.count(200)
        return sent / took, len(statuses) - sent, conflicts / max(len(statuses), 1), len(statuses)
    finally:
        peers.stop(server)


def main():
    binaries = sys.argv[1:] or [str(ROOT / "target" / "release" / "otp-service")]
    port = peers.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto_log = ROOT / "target" / "moto-contention-bench.log"
    moto = peers.start("moto (contention)",
                       [sys.executable, str(ROOT / "scripts" / "moto_server.py"), "127.0.0.1", str(port)],
                       peers.url_answers(f"{endpoint}/moto-api/reset", data=b""), moto_log,
                       env=dict(os.environ, MOTO_CONTENTION_COMMIT_MS=str(COMMIT_MS)))
    try:
        print(f"send path under contention (commit {COMMIT_MS} ms, {SECONDS:.0f} s per row, one country)")
        for concurrency in CONCURRENCY:
            for binary in binaries:
                rate, failed, conflicts, total = run(binary, endpoint, moto_log, concurrency)
                print(f"  {concurrency:>3} at once  {pathlib.Path(binary).name:<24} {rate:7.1f} sent/s  "
                      f"{failed:5d} of {total:5d} not 200  {conflicts:5.2f} conflicts per send", flush=True)
    finally:
        peers.stop(moto)


if __name__ == "__main__":
    main()
