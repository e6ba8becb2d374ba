#!/usr/bin/env python3
"""Lambda cold-start figures for `make bench` (run inside scripts/with-moto.sh):

- init time: exec of the binary to its first poll of the Runtime API (`GET .../next`), measured
  against a minimal local Runtime API, median of RUNS starts;
- first response: exec to the response of the first invocation (a real API Gateway event);
- peak RSS (VmHWM) after that first invocation; binary size (stripped release).

Compared in the same run with a hello-world `lambda_http` binary built with the same profile.
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
import otp_aws  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
RUNS = int(os.environ.get("LAMBDA_BENCH_RUNS", "20"))
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL") or sys.exit("lambda_init: run inside scripts/with-moto.sh")


class RuntimeApi(BaseHTTPRequestHandler):
    """One invocation per process: the first /next gets the event, later ones wait."""

    protocol_version = "HTTP/1.1"
    state = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        if self.path.endswith("/runtime/invocation/next"):
            if "poll" not in state:
                state["poll"] = time.perf_counter()
                body = state["event"]
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 15000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                state["done"].wait(30)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        state = self.server.state
        if "/response" in self.path or "/error" in self.path:
            state["response_at"] = time.perf_counter()
            state["response"] = body
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if "/response" in self.path or "/error" in self.path:
            state["responded"].set()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the killed function resets its pending /next: expected, not news


def start_once(binary, event, env):
    server = QuietServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    server.state = {"event": event, "done": threading.Event(), "responded": threading.Event()}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    run_env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    started = time.perf_counter()
    process = subprocess.Popen([str(binary)], env=run_env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        if not server.state["responded"].wait(30):
            raise RuntimeError(f"{binary.name} gave no response")
        rss = peak_rss_kib(process.pid)
        state = server.state
        response = json.loads(state["response"])
        return ((state["poll"] - started) * 1000, (state["response_at"] - started) * 1000, rss,
                response.get("statusCode"))
    finally:
        server.state["done"].set()
        process.kill()
        process.wait()
        server.shutdown()
        server.server_close()


def main():
    table = f"otp-bench-{os.getpid()}"
    otp_aws.create_table(ENDPOINT, table)
    otp_aws.verify_identity(ENDPOINT, "bench.example.com")
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": ENDPOINT, "OTP_TABLE_NAME": table, "OTP_HASH_KEY": "ab" * 32,
        "EMAIL_FROM": "no-reply@bench.example.com", "RUST_LOG": "warn",
    }
    if os.environ.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
    events = ROOT / "events"
    subjects = [
        ("hello_lambda (baseline)", RELEASE / "examples" / "hello_lambda", events / "verify-code.json", 200),
        ("verify-code", RELEASE / "verify-code", events / "verify-code.json", 404),
        ("send-code", RELEASE / "send-code", events / "send-code-email.json", 200),
    ]
    rows = []
    for name, binary, event_file, expected in subjects:
        event = event_file.read_bytes()
        inits, firsts, rsss = [], [], []
        for i in range(RUNS):
            # A fresh user per run, so send-code never meets its own cooldown.
            body = event.replace(b"user-123", f"user-bench-{i}".encode())
            init, first, rss, status = start_once(binary, body, env)
            if status != expected:
                raise RuntimeError(f"{name}: status {status}, expected {expected}")
            inits.append(init)
            firsts.append(first)
            rsss.append(rss)
        rows.append((name, binary.stat().st_size, statistics.median(inits), statistics.median(firsts),
                     max(rsss)))
    base_init = rows[0][2]
    print(f"{'binary':26} {'size':>9} {'init (median)':>14} {'x hello':>8} {'first response':>15} {'peak RSS':>9}")
    for name, size, init, first, rss in rows:
        print(f"{name:26} {size / 1e6:7.2f}MB {init:12.2f}ms {init / base_init:7.2f}x {first:13.2f}ms {rss / 1024:7.1f}MB")
    print(f"({RUNS} starts each; first response includes one DynamoDB call to moto on this machine)")


if __name__ == "__main__":
    main()
