"""Test peers and services started for tests, local runs and benchmarks: one way to start a
process in its own process group, wait until it is ready, and stop it by its PID."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    def ready():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    return ready


def url_answers(url, data=None):
    def ready():
        try:
            urllib.request.urlopen(url, data=data, timeout=1)
            return True
        except OSError:
            return False
    return ready


def start(name, command, ready, log_path, timeout=30, **popen):
    """Starts `command` (its own session, so its children stop with it), with stdout and stderr
    to `log_path`, and waits until `ready()` is true. Exits with the log when it dies or times
    out."""
    log = open(log_path, "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, **popen)
    deadline = time.time() + timeout
    while not ready():
        if process.poll() is not None or time.time() > deadline:
            stop(process)
            log.close()
            with open(log_path) as f:
                sys.stderr.write(f.read()[-4000:])
            what = "exited" if process.returncode is not None else f"was not ready in {timeout} s"
            sys.exit(f"{name} {what} (log: {log_path})")
        time.sleep(0.2)
    return process


def stop(process, grace=20):
    """SIGTERM to the process group, then SIGKILL if it has not stopped after `grace` s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def printed_url(path, pid, timeout=30):
    """The first http://127.0.0.1:PORT the process `pid` writes to `path`, once it is there."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                for word in f.read().split():
                    if word.startswith("http://127.0.0.1:"):
                        return word
        except OSError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(f"peers: process {pid} exited before printing its URL (see {path})")
        time.sleep(0.1)
    sys.exit(f"peers: process {pid} printed no URL in {timeout} s (see {path})")


if __name__ == "__main__":
    # For shell scripts: `peers.py url FILE PID` prints the URL the server wrote to FILE.
    if len(sys.argv) == 4 and sys.argv[1] == "url":
        print(printed_url(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit("usage: peers.py url FILE PID")
