#!/usr/bin/env python3
"""`make dynamodb-local`: moto server on 127.0.0.1 with the OTP table (the schema template.yaml
declares) and a verified SES identity. Runs in the foreground until Ctrl-C, then stops moto.
Prints the environment for `make run` against it."""
import os
import pathlib
import signal
import sys

import otp_aws
import peers

PORT = int(os.environ.get("MOTO_PORT", "5005"))
TABLE = os.environ.get("OTP_TABLE_NAME", "otp-codes")
ENDPOINT = f"http://127.0.0.1:{PORT}"

LOG = pathlib.Path(__file__).resolve().parent.parent / "target" / "moto-local.log"
LOG.parent.mkdir(exist_ok=True)
# If the port is taken, moto exits and peers.start says so (set MOTO_PORT to change it).
moto = peers.start("moto", [sys.executable, os.path.join(os.path.dirname(__file__), "moto_server.py"),
                            "127.0.0.1", str(PORT)], peers.url_answers(f"{ENDPOINT}/moto-api/"), LOG)
try:
    otp_aws.create_table(ENDPOINT, TABLE)
    # The sender identity lambda.env uses, so email codes "send" (moto keeps them).
    otp_aws.verify_identity(ENDPOINT, "example.com")
    print(f"\nDynamoDB (moto) on {ENDPOINT} with table {TABLE} (TTL on expires_at),")
    print("and SES with the identity example.com (sent mail: /moto-api/data.json).")
    print("In another terminal:\n")
    print(f"  OTP_TABLE_NAME={TABLE} AWS_ENDPOINT_URL={ENDPOINT} AWS_REGION=us-east-1 \\")
    print("  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing make run\n")
    print("Ctrl-C stops moto (its data is in memory and goes with it).", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
finally:
    peers.stop(moto)
