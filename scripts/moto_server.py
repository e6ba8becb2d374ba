#!/usr/bin/env python3
"""moto server with one request at a time: `moto_server.py HOST PORT`.

moto's own `moto_server` is threaded and its DynamoDB model does not lock items, so two
conditional UpdateItem calls on one item can interleave and both pass their condition. Real
DynamoDB serialises conditional writes per item, and the service's race guarantees (single use,
attempt cap) rest on exactly that. Serving moto's unchanged WSGI app behind one lock restores the
per-request atomicity the real service has, while connections are still accepted concurrently.
"""
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # Materialise the whole response inside the lock: the state change and its answer
            # happen as one step, as on DynamoDB.
            return [b"".join(app(environ, start_response))]

    run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
