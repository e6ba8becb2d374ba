"""A local Lambda Runtime API: runs a function binary the way Lambda runs it (the binary polls
`/runtime/invocation/next`, posts each response), with a list of API Gateway events served one
after the other to the same process. Used by `make bench` (bench/lambda_init.py, one event per
cold start) and by `make test` (scripts/lambda_e2e.py)."""
import os
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RuntimeApi(BaseHTTPRequestHandler):
    """Each /next gets the next event; once they are all answered, /next waits for the end."""

    protocol_version = "HTTP/1.1"
    # Lambda's Runtime API does not hold back the body of a /next answer until the headers are
    # ACKed; http.server writes the two apart, so Nagle would.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        if not self.path.endswith("/runtime/invocation/next"):
            self.reply(404)
            return
        with state["lock"]:
            state.setdefault("poll", time.perf_counter())
            index = state["served"]
            state["served"] += 1
        if index < len(state["events"]):
            body = state["events"][index]
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"local-request-{index + 1}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 15000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                             "arn:aws:lambda:us-east-1:123456789012:function:local")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            state["done"].wait(30)
            self.reply(503)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        state = self.server.state
        answer = "/response" in self.path or "/error" in self.path
        if answer:
            state.setdefault("response_at", time.perf_counter())
            state["responses"].append(body)
        self.reply(202)
        if answer and len(state["responses"]) == len(state["events"]):
            state["responded"].set()

    def reply(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the killed function resets its pending /next: expected, not news


class Invocation:
    """`binary` started against a Runtime API that serves `events` (bytes) in order. `wait()`
    returns once every event is answered; the process is killed on `close()` (or leaving a
    `with` block). Timings are `time.perf_counter()` values: `started` (the child's exec, as it
    reports it when there is a `preexec_fn`; else the fork), `state["poll"]` (first poll),
    `state["response_at"]` (first response); `forked` (before the fork) and
    `cpu_before_exec_ms` (the child's CPU time before its exec) give what the harness's fork and
    `preexec_fn` cost."""

    def __init__(self, binary, events, env, output=subprocess.DEVNULL, preexec_fn=None):
        self.server = QuietServer(("127.0.0.1", 0), RuntimeApi)
        self.state = {"events": list(events), "served": 0, "responses": [],
                      "lock": threading.Lock(), "done": threading.Event(),
                      "responded": threading.Event()}
        self.server.state = self.state
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        run_env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.server.server_address[1]}")
        # Functions log to stdout, as on Lambda. After the last response, the function's next
        # poll gets a bare 503 and lambda_runtime panics on the missing request id: expected,
        # it is killed.
        # A path, or a whole command line (the bench's Python peer).
        argv = [str(a) for a in binary] if isinstance(binary, (list, tuple)) else [str(binary)]
        self.forked = self.started = time.perf_counter()
        self.cpu_before_exec_ms = 0.0
        if preexec_fn is None:
            self.process = subprocess.Popen(argv, env=run_env, stdout=output, stderr=output)
            return
        # With a `preexec_fn` (the bench's move into a cgroup), the child reports the time and
        # its own CPU time just before it execs: the fork and that move are the harness's work,
        # not the function's. perf_counter is CLOCK_MONOTONIC, one clock for both processes.
        report, reported = os.pipe()

        def before_exec():
            preexec_fn()
            with open("/proc/self/schedstat") as schedstat:
                cpu_ns = int(schedstat.read().split()[0])
            os.write(reported, struct.pack("dq", time.perf_counter(), cpu_ns))

        try:
            self.process = subprocess.Popen(argv, env=run_env, stdout=output, stderr=output,
                                            preexec_fn=before_exec)
        except BaseException:
            os.close(report)
            raise
        finally:
            os.close(reported)
        with os.fdopen(report, "rb") as pipe:
            self.started, cpu_ns = struct.unpack("dq", pipe.read(16))
        self.cpu_before_exec_ms = cpu_ns / 1e6

    def wait(self, timeout=60):
        """The responses (bytes), in order; raises if they are not all there in `timeout` s."""
        if not self.state["responded"].wait(timeout):
            raise RuntimeError(f"the function answered {len(self.state['responses'])} of "
                               f"{len(self.state['events'])} events in {timeout} s")
        return list(self.state["responses"])

    def close(self):
        self.state["done"].set()
        self.process.kill()
        self.process.wait()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
