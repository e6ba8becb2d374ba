#!/usr/bin/env python3
"""with_moto.py COMMAND...: runs COMMAND with a moto server (DynamoDB, SES, Secrets Manager) on a
free loopback port, pointed at by AWS_ENDPOINT_URL, and the OTP table's schema from
template.yaml in TEST_TABLE_SCHEMA; stops moto by its PID afterwards. Exits with COMMAND's
status."""
import json
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import otp_aws  # noqa: E402
import peers  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: with_moto.py COMMAND...")
    (ROOT / "target").mkdir(exist_ok=True)
    port = peers.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # One request at a time, like DynamoDB's per-item atomicity: see scripts/moto_server.py.
    moto = peers.start("moto", [sys.executable, str(ROOT / "scripts" / "moto_server.py"),
                                "127.0.0.1", str(port)],
                       peers.url_answers(f"{endpoint}/moto-api/reset", data=b""),
                       ROOT / "target" / "moto.log")
    try:
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_DEFAULT_REGION="us-east-1",
                   TEST_TABLE_SCHEMA=json.dumps(otp_aws.table_schema()))
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB"):
            env.pop(var, None)
        print(f"with_moto: moto (pid {moto.pid}) on {endpoint}", flush=True)
        sys.exit(subprocess.call(sys.argv[1:], env=env))
    finally:
        peers.stop(moto)


if __name__ == "__main__":
    main()
