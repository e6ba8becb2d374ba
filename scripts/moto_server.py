#!/usr/bin/env python3
"""moto server with one request at a time: `moto_server.py HOST PORT`.

moto's own `moto_server` is threaded and its DynamoDB model does not lock items, so two
conditional UpdateItem calls on one item can interleave and both pass their condition. Real
DynamoDB serialises conditional writes per item, and the service's race guarantees (single use,
attempt cap) rest on exactly that. Serving moto's unchanged WSGI app behind one lock restores the
per-request atomicity the real service has, while connections are still accepted concurrently.

moto's TransactWriteItems keeps a rollback copy of every table it touches, a deep copy of all of
its items, so each transaction costs time in proportion to the table (170 ms at 1,000 items,
against 4 ms for an UpdateItem), and every send with limits is a transaction. Requests run one at
a time here, so a transaction can only change the items it names: `cheaper_transactions` keeps
copies of just those and restores them when moto rolls back. What a transaction does, and
answers, is moto's own code unchanged.
"""
import copy
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

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_ABSENT = object()


class _KeepTables:
    """Stands in for the `copy` module inside moto's DynamoDB model: a table (without a sort key)
    is not copied; anything else is."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table) and not value.has_range_key:
            return value
        return copy.deepcopy(value, memo)


def cheaper_transactions() -> None:
    transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            kind, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None or table.has_range_key:
                continue
            key = op["Item"] if kind == "Put" else op.get("Key", {})
            if table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            before = table.items.get(hash_value, _ABSENT)
            if before is not _ABSENT:
                before = copy.deepcopy(before)
            saved.append((table, hash_value, before))
        try:
            return transact(self, transact_items)
        except BaseException:
            for table, hash_value, before in reversed(saved):
                if before is _ABSENT:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = before
            raise

    dynamodb_models.copy = _KeepTables
    DynamoDBBackend.transact_write_items = transact_write_items


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    cheaper_transactions()
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
