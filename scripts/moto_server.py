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

Contention (opt-in, `MOTO_CONTENTION_COMMIT_MS=<ms>`): DynamoDB does not queue transactions on an
item. While a transaction commits, another transaction touching one of its items is cancelled
with `TransactionConflict`, and a plain write to one of them gets `TransactionConflictException`.
In this mode a successful `TransactWriteItems` holds its items for the commit time (its caller
waits that long for the answer, outside the lock), and a write that touches a held item is
answered as DynamoDB answers it, without reaching moto. Reads are not affected.
"""
import copy
import io
import json
import os
import signal
import sys
import threading
import time

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


WRITES = {"TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem"}
CONFLICT = "Transaction is ongoing for the item"


def written_items(operation, body, key_names):
    """The (table, key) of every item a write request touches, in request order; one entry per
    transaction item (None for one whose key cannot be told)."""
    def identity(table, item):
        names = key_names(table)
        if not names or not all(n in item for n in names):
            return None
        return table, json.dumps({n: item[n] for n in names}, sort_keys=True)

    if operation == "TransactWriteItems":
        found = []
        for entry in body.get("TransactItems", []):
            kind, op = next(iter(entry.items()))
            found.append(identity(op.get("TableName"), op.get("Item") if kind == "Put" else op.get("Key", {})))
        return found
    if operation == "BatchWriteItem":
        return [identity(table, next(iter(request.values())).get("Item") or
                         next(iter(request.values())).get("Key", {}))
                for table, requests in body.get("RequestItems", {}).items() for request in requests]
    return [identity(body.get("TableName"), body.get("Item") if operation == "PutItem" else body.get("Key", {}))]


class Contention:
    """Items held by committing transactions (see the module's docstring)."""

    def __init__(self, commit_seconds, key_names):
        self.commit = commit_seconds
        self.key_names = key_names
        self.held = {}
        self.refused = 0

    def refuse(self, operation, items):
        """The answer to a write touching a held item, or None when it may go to moto."""
        now = time.monotonic()
        self.held = {item: until for item, until in self.held.items() if until > now}
        conflicts = [item is not None and item in self.held for item in items]
        if not any(conflicts):
            return None
        if operation == "TransactWriteItems":
            reasons = [{"Code": "TransactionConflict", "Message": CONFLICT} if c else {"Code": "None"}
                       for c in conflicts]
            codes = ", ".join(r["Code"] for r in reasons)
            return {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": f"Transaction cancelled, please refer cancellation reasons for "
                               f"specific reasons [{codes}]",
                    "CancellationReasons": reasons}
        return {"__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                "message": CONFLICT}

    def hold(self, items):
        until = time.monotonic() + self.commit
        for item in items:
            if item is not None:
                self.held[item] = until


def table_keys(name):
    """The key attribute names of a moto table, from its backend."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    for region in ("us-east-1",):
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.get(name)
        if table is not None:
            return [table.hash_key_attr] + ([table.range_key_attr] if table.has_range_key else [])
    return []


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    cheaper_transactions()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    commit_ms = int(os.environ.get("MOTO_CONTENTION_COMMIT_MS", "0") or 0)
    contention = Contention(commit_ms / 1000, table_keys) if commit_ms > 0 else None

    def one_at_a_time(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target.startswith("DynamoDB_") else ""
        items = None
        if contention is not None and operation in WRITES:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(raw)
            items = written_items(operation, json.loads(raw or b"{}"), table_keys)
        with lock:
            if items is not None:
                refusal = contention.refuse(operation, items)
                if refusal is not None:
                    contention.refused += 1
                    print(f"contention: {operation} refused ({contention.refused})", flush=True)
                    start_response("400 Bad Request",
                                   [("Content-Type", "application/x-amz-json-1.0")])
                    return [json.dumps(refusal).encode()]
            status = []

            def recording(code, headers, exc_info=None):
                status.append(code)
                return start_response(code, headers, exc_info)

            # Materialise the whole response inside the lock: the state change and its answer
            # happen as one step, as on DynamoDB.
            answer = [b"".join(app(environ, recording))]
            holds = (items is not None and operation == "TransactWriteItems"
                     and status and status[0].startswith("200"))
            if holds:
                contention.hold(items)
        if holds:
            time.sleep(contention.commit)
        return answer

    run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
