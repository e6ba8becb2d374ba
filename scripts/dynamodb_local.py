#!/usr/bin/env python3
"""`make dynamodb-local`: the AWS side of a local run. moto on 127.0.0.1:$MOTO_PORT with the OTP
table (the schema template.yaml declares) and a verified SES identity, and the Twilio fake on
127.0.0.1:$TWILIO_FAKE_PORT, which prints every SMS, WhatsApp message and call it accepts (that
is where a code sent by `make lambda-watch` shows). The Makefile sets both ports (one place).
Runs in the foreground until Ctrl-C, then stops both. Prints the environment for `make run`."""
import os
import pathlib
import signal
import sys

import otp_aws
import peers
import twilio_fake

# The Makefile holds the ports (MOTO_PORT, TWILIO_FAKE_PORT): run this through it.
if not (os.environ.get("MOTO_PORT") and os.environ.get("TWILIO_FAKE_PORT")):
    sys.exit("dynamodb_local.py: run it as `make dynamodb-local` (the Makefile sets the ports)")
PORT = int(os.environ["MOTO_PORT"])
TWILIO_PORT = int(os.environ["TWILIO_FAKE_PORT"])
TABLE = os.environ.get("OTP_TABLE_NAME", "otp-codes")
ENDPOINT = f"http://127.0.0.1:{PORT}"

LOG = pathlib.Path(__file__).resolve().parent.parent / "target" / "moto-local.log"
LOG.parent.mkdir(exist_ok=True)
# If the port is taken, moto exits and peers.start says so (set MOTO_PORT to change it).
moto = peers.start("moto", [sys.executable, os.path.join(os.path.dirname(__file__), "moto_server.py"),
                            "127.0.0.1", str(PORT)], peers.url_answers(f"{ENDPOINT}/moto-api/"), LOG)
twilio = None
try:
    twilio = twilio_fake.TwilioFake(port=TWILIO_PORT, echo=True)
    otp_aws.create_table(ENDPOINT, TABLE)
    # The sender identity lambda.env uses, so email codes "send" (moto keeps them).
    otp_aws.verify_identity(ENDPOINT, "example.com")
    print(f"\nDynamoDB (moto) on {ENDPOINT} with table {TABLE} (TTL on expires_at),")
    print("and SES with the identity example.com (sent mail: /moto-api/data.json).")
    print(f"Twilio fake on {twilio.url()}: SMS, WhatsApp and calls are printed below.")
    print("In another terminal:\n")
    print(f"  OTP_TABLE_NAME={TABLE} AWS_ENDPOINT_URL={ENDPOINT} AWS_REGION=us-east-1 \\")
    print("  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing make run\n")
    print("Ctrl-C stops both (their data is in memory and goes with them).\n", flush=True)
    # Ctrl-C (SIGINT) or SIGTERM end the wait; either way both peers are stopped below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
finally:
    if twilio:
        twilio.close()
    peers.stop(moto)
