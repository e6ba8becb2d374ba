#!/usr/bin/env python3
"""End to end through the real Lambda binaries under `cargo lambda watch` (part of `make test`,
run inside scripts/with_moto.py): send-code invoked with `cargo lambda invoke --data-file
events/...`, the code read from the email SES (moto) received, then verify-code over the watch
HTTP endpoint: a wrong code, the right one, a replay, and a validation error. Starts and stops
`cargo lambda watch` itself (by its process group). Then the binaries it built, run as Lambda
runs them (a local Runtime API), read the system's CA bundle once per process and nothing else
of the certificate directories, through an email and an SMS (to a Twilio fake) in one process."""
import ctypes
import json
import os
import time
import pathlib
import secrets
import string
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import jwt

import checklist
import lambda_runtime
import otp_aws
import peers
import tls_front
import twilio_fake

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL") or sys.exit("lambda_e2e: run inside scripts/with_moto.py")
CHECKS = checklist.Checklist("lambda e2e")
check = CHECKS.check


# The development key of lambda.env, which the backend sample events in events/ carry.
DEV_KEY = "otpk_local-dev-key-not-a-secret-0123456789"


def http_post(url, body, key=DEV_KEY):
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def emails_to(address):
    with urllib.request.urlopen(f"{ENDPOINT}/moto-api/data.json", timeout=10) as response:
        data = json.loads(response.read())
    found, stack = [], [data.get("ses", {}).get("Message", {})]
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and "destinations" in node:
            if address in json.dumps(node["destinations"]):
                found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def code_in(html):
    return html.split('letter-spacing:8px;color:#111827;">')[1].split("</div>")[0]


def main():
    table = f"otp-lambda-e2e-{os.getpid()}"
    otp_aws.create_table(ENDPOINT, table)
    otp_aws.verify_identity(ENDPOINT, "lambda-e2e.example.com")
    before = len(emails_to("user@example.com"))
    outbox = Outbox()

    port = peers.free_port()
    hash_key = os.urandom(32).hex()
    env_file = tempfile.NamedTemporaryFile("w", suffix=".env", delete=False)
    env_file.write("\n".join([
        f"OTP_TABLE_NAME={table}",
        f"OTP_HASH_KEY={hash_key}",
        f"OTP_TOKEN_SIGNING_KEY={os.urandom(32).hex()}",
        "OTP_TOKEN_ISSUER=https://otp.lambda-e2e.example.com",
        "OTP_BACKEND_TOKEN_AUDIENCE=lambda-e2e-backend",
        # Quoted: cargo lambda's env-file parser refuses an unquoted "=" in a value.
        f'OTP_API_KEYS="local={DEV_KEY}"',
        "EMAIL_FROM=no-reply@lambda-e2e.example.com",
        *outbox.settings(),
        f"AWS_ENDPOINT_URL={ENDPOINT}",
        "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
        "RUST_LOG=info",
    ]) + "\n")
    env_file.close()
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    watch = peers.start(
        "cargo lambda watch",
        ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
         "--env-file", env_file.name, "--ignore-changes"],
        peers.port_open(port), ROOT / "target" / "lambda-watch.log", timeout=120,
        cwd=ROOT, env=env)
    try:

        # send-code through `cargo lambda invoke` with the sample event (compiles on first use)
        invoke = subprocess.run(
            ["cargo", "lambda", "invoke", "send-code", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port), "--data-file", "events/send-code-email.json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        check("invoke send-code exits 0", invoke.returncode == 0, invoke.stderr[-2000:])
        response = json.loads(invoke.stdout)
        body = json.loads(response["body"])
        check("send-code answers 200", response["statusCode"] == 200, response)
        check("send-code says via email", body["message"] == "OTP sent successfully via email", body)
        mails = emails_to("user@example.com")
        check("SES received exactly one new email", len(mails) == before + 1, len(mails))
        code = code_in(mails[-1]["body"])
        check("the email holds a 6-digit code", len(code) == 6 and code.isdigit(), code)

        verify = f"http://127.0.0.1:{port}/lambda-url/verify-code/verify-code"
        status, body = http_post(verify, {"user_id": "user-123", "passcode": code}, key=None)
        check("verify-code without the API key is 401", status == 401 and "detail" in body,
              (status, body))
        wrong = "".join(str((int(c) + 1) % 10) for c in code)
        status, body = http_post(verify, {"user_id": "user-123", "passcode": wrong})
        check("wrong code is 400 with 2 attempts left",
              status == 400 and body["attempts_remaining"] == 2, (status, body))
        status, body = http_post(verify, {"user_id": "user-123", "passcode": code})
        check("right code is 200", status == 200 and body["success"] is True, (status, body))
        check_token(body["verification_token"],
                    f"http://127.0.0.1:{port}/lambda-url/verify-code/.well-known/jwks.json")
        status, body = http_post(verify, {"user_id": "user-123", "passcode": code})
        check("replay is 404 not_found", status == 404 and body["error"] == "not_found", (status, body))
        status, body = http_post(verify, {"user_id": "", "passcode": "12ab"})
        check("validation error is 422 naming both fields",
              status == 422 and [d["loc"][-1] for d in body["detail"]] == ["user_id", "passcode"],
              (status, body))
        status, body = http_post(f"http://127.0.0.1:{port}/lambda-url/send-code/send-code",
                                 {"user_id": "user-123", "method": "sms", "phone": "+14155552671"})
        check("sms without a sender is 503 channel_unavailable (never the console)",
              status == 503 and body["error"] == "channel_unavailable", (status, body))
        check_events(port, env, table, outbox)
        check_fraud_guard(port, env, table, hash_key)
        check_send_hook(table, hash_key)
    finally:
        peers.stop(watch)
        os.unlink(env_file.name)
        outbox.close()
    check_logs((ROOT / "target" / "lambda-watch.log").read_text(errors="replace"))
    check_sample_events()
    check_root_certificates(table)
    CHECKS.summary()


def documented_events():
    """The table of docs/development.md: (event file, function, status under lambda.env)."""
    rows = []
    for line in (ROOT / "docs" / "development.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("events/") and cells[2].isdigit():
            rows.append((cells[0], cells[1], int(cells[2])))
    return rows


def check_sample_events():
    """`make lambda-watch` as a developer runs it: lambda.env as committed (only the ports of
    the local peers, which the Makefile passes, and a fresh table), every sample event invoked
    in the order of docs/development.md's table, each answering the status it documents."""
    rows = documented_events()
    names = sorted(p.name for p in (ROOT / "events").glob("*.json"))
    check("docs/development.md lists every sample event once",
          sorted(pathlib.Path(r[0]).name for r in rows) == names, (rows, names))
    table = f"otp-events-{os.getpid()}"
    otp_aws.create_table(ENDPOINT, table)
    otp_aws.verify_identity(ENDPOINT, "example.com")
    twilio = twilio_fake.TwilioFake()
    port = peers.free_port()
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    watch = peers.start(
        "cargo lambda watch (lambda.env)",
        ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
         "--env-file", "lambda.env", "--env-var", f"AWS_ENDPOINT_URL={ENDPOINT}",
         "--env-var", f"TWILIO_API_BASE_URL={twilio.url()}",
         "--env-var", f"OTP_TABLE_NAME={table}", "--ignore-changes"],
        peers.port_open(port), ROOT / "target" / "lambda-watch-events.log", timeout=120,
        cwd=ROOT, env=env)
    try:
        answers = []
        for event, function, _ in rows:
            invoke = subprocess.run(
                ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(port), "--data-file", event],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
            try:
                answer = json.loads(invoke.stdout)
                # A stream function answers its failed records, not a status.
                answers.append(len(answer.get("batchItemFailures", [])) if function in ("fraud-guard", "events")
                               else answer["statusCode"])
            except (ValueError, KeyError):
                answers.append(invoke.stderr[-500:])
        wrong = [(r, a) for r, a in zip(rows, answers) if r[2] != a]
        check(f"all {len(rows)} sample events answer as docs/development.md says under lambda.env",
              not wrong, wrong)
        def kind(message):
            if "Twiml" in message:
                return "call"
            return "whatsapp" if message["To"][0].startswith("whatsapp:") else "sms"
        kinds = {kind(m) for m in twilio.messages}
        check("the Twilio fake got SMS, a WhatsApp message and a call",
              kinds == {"sms", "whatsapp", "call"}, [dict(m) for m in twilio.messages])
    finally:
        peers.stop(watch)
        twilio.close()


def check_token(token, jwks_url):
    """The token as an application's backend checks it, with an independent library (PyJWT):
    the key from the function's JWK Set by the token's kid, EdDSA only, issuer, audience, expiry
    and the claims docs/api.md documents; and a token altered by one character fails."""
    with urllib.request.urlopen(jwks_url, timeout=60) as response:
        check("the JWK Set is public and cacheable",
              response.status == 200 and "max-age" in response.headers.get("cache-control", ""),
              dict(response.headers))
        keys = jwt.PyJWKSet.from_dict(json.loads(response.read()))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience="lambda-e2e-backend",
                        issuer="https://otp.lambda-e2e.example.com",
                        options={"require": ["exp", "iat", "sub", "jti"]})
    check("PyJWT accepts the token: sub, purpose, channel, 300 s",
          claims["sub"] == "user-123" and claims["purpose"] == "default"
          and claims["channel"] == "email" and claims["exp"] - claims["iat"] == 300
          and abs(claims["iat"] - time.time()) < 120, claims)
    head, payload, signature = token.split(".")
    forged = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    try:
        jwt.decode(f"{head}.{forged}.{signature}", key.key, algorithms=["EdDSA"],
                   audience="lambda-e2e-backend")
        check("PyJWT refuses an altered token", False, "accepted")
    except jwt.InvalidTokenError:
        check("PyJWT refuses an altered token", True)
    try:
        jwt.decode(token, key.key, algorithms=["EdDSA"], audience="someone-else")
        check("PyJWT refuses the token for another audience", False, "accepted")
    except jwt.InvalidAudienceError:
        check("PyJWT refuses the token for another audience", True)


def check_logs(log):
    """What the functions wrote: JSON log lines under each request's span, and EMF records.
    (The EMF records are checked against the specification by the cargo tests; here, that the
    real binaries write them.)"""
    lines = []
    for line in log.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            lines.append(json.loads(line[start:]))
        except ValueError:
            continue
    done = [l for l in lines if l.get("fields", {}).get("message") == "request done"]
    check("one 'request done' line per request", len(done) >= 7, len(done))
    def request_span(line):
        return next((s for s in line.get("spans", []) if s.get("name") == "request"), {})

    spans = [request_span(l) for l in done]
    check("every request line carries the Lambda and API Gateway request ids, route, latency",
          all(s.get("lambda_request_id") and s.get("apigw_request_id") and s.get("route") for s in spans)
          and all("latency_ms" in l["fields"] and "status" in l["fields"] for l in done), done[:2])
    outcomes = {s.get("outcome") for s in spans}
    check("request lines name the outcomes", {"sent", "wrong_code", "verified", "not_found"} <= outcomes,
          outcomes)
    engine = [l for l in lines if l.get("fields", {}).get("message") == "code sent"]
    check("a line logged inside a request carries its ids and the masked user",
          engine and request_span(engine[0]).get("lambda_request_id")
          and request_span(engine[0]).get("to") == "u***@example.com", engine[:1])
    check("no log line holds the full address", not any("user@example.com" in json.dumps(l) for l in lines))
    records = [l for l in lines if "_aws" in l]
    names = {(d["Name"], r.get("Outcome") or r.get("Function"))
             for r in records for d in r["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    check("the functions write EMF records: sends, verifications, cold starts",
          {("Sends", "sent"), ("Verifications", "verified"), ("ColdStarts", "send-code"),
           ("ColdStarts", "verify-code")} <= names, sorted(names))


# The certificate directories of the systems we run on and where their bundles' symlinks point.
CERT_DIRS = ["/etc/ssl/certs", "/etc/pki/tls/certs", "/etc/pki/ca-trust/extracted/pem",
             "/usr/share/ca-certificates/mozilla", "/etc/ssl"]
BUNDLES = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"]


class FileOpens:
    """Every open(2) of a file in, or of one of, the watched directories (fanotify FAN_OPEN, as
    root), with the process that made it, so that other processes on the machine (a background
    `sam build` fetching over TLS, say) do not count. `take(pid)` returns the paths `pid` opened
    since the last take."""

    FAN_CLASS_NOTIF, FAN_CLOEXEC, FAN_NONBLOCK = 0x0, 0x1, 0x2
    FAN_MARK_ADD, FAN_OPEN, FAN_ONDIR, FAN_EVENT_ON_CHILD = 0x1, 0x20, 0x40000000, 0x08000000
    AT_FDCWD = -100
    METADATA = struct.Struct("IBBHQii")

    def __init__(self, directories):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                                       ctypes.c_char_p]
        self.fd = libc.fanotify_init(self.FAN_CLASS_NOTIF | self.FAN_CLOEXEC | self.FAN_NONBLOCK,
                                     os.O_RDONLY)
        if self.fd < 0:
            sys.exit(f"lambda e2e: fanotify_init failed (errno {ctypes.get_errno()}; needs root)")
        for directory in directories:
            if os.path.isdir(directory):
                mask = self.FAN_OPEN | self.FAN_ONDIR | self.FAN_EVENT_ON_CHILD
                if libc.fanotify_mark(self.fd, self.FAN_MARK_ADD, mask, self.AT_FDCWD,
                                      directory.encode()) < 0:
                    sys.exit(f"lambda e2e: cannot watch {directory} (errno {ctypes.get_errno()})")
        self.events = []

    def _drain(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                length, _, _, _, mask, fd, pid = self.METADATA.unpack_from(data, offset)
                offset += length
                if fd < 0:
                    continue
                try:
                    path = os.readlink(f"/proc/self/fd/{fd}")
                finally:
                    os.close(fd)
                if mask & self.FAN_ONDIR:
                    path += "/ (listed)"
                self.events.append((pid, path))

    def take(self, pid):
        self._drain()
        mine = [path for who, path in self.events if who == pid]
        self.events = []
        return mine

    def close(self):
        os.close(self.fd)


def function_env(table, **settings):
    """A function's environment as Lambda gives it, against moto, with the development API key."""
    return {
        "PATH": os.environ["PATH"], "AWS_LAMBDA_FUNCTION_NAME": "local",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": ENDPOINT,
        "OTP_TABLE_NAME": table, "OTP_API_KEYS": f"local={DEV_KEY}", "RUST_LOG": "warn",
        **settings,
    }


def stream_event(endpoint, table):
    """Every record of the table's stream so far, read from moto's DynamoDB Streams API as
    Lambda's event source mapping reads it, in the event shape Lambda hands the function."""
    import base64
    import datetime

    ddb = otp_aws.client("dynamodb", endpoint)
    streams = otp_aws.client("dynamodbstreams", endpoint)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]

    def plain(value):
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(page["Records"])
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return [dict(plain(r), eventSourceARN=arn) for r in records]


def check_send_hook(table, hash_key):
    """The send-code binary, run as Lambda runs it, delivering an SMS through the send hook: the
    Python receiver example of docs/examples gets it, signed (it checks with the standardwebhooks
    library), and Twilio is not configured at all."""
    import base64
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    port = peers.free_port()
    receiver = peers.start(
        "send hook receiver", [str(VENV_BIN / "python"), str(ROOT / "docs" / "examples" / "send_hook_receiver.py")],
        peers.port_open(port), ROOT / "target" / "send-hook-receiver.log", timeout=30, cwd=ROOT,
        env=dict(os.environ, SEND_HOOK_SECRET=secret, PORT=str(port)))
    try:
        env = function_env(table, OTP_HASH_KEY=hash_key, OTP_SMS_ALLOWED_COUNTRIES="US",
                           OTP_SEND_HOOK_URL=f"http://127.0.0.1:{port}/otp",
                           OTP_SEND_HOOK_SECRET=secret)
        # A number outside the block the fraud guard's check walked (and paused).
        event = (ROOT / "events" / "send-code-sms.json").read_text() \
            .replace("user-123", "hook-user").replace("+14155552671", "+14155550142")
        (answer,), _, _ = run_function(ROOT / "target" / "debug" / "send-code", [event.encode()], env,
                                       "lambda-send-hook")
        check("send-code sends an SMS through the hook", answer["statusCode"] == 200, answer)
        sent_id = json.loads(answer["body"])["verification_id"]
        deadline = time.time() + 10
        delivered = []
        while time.time() < deadline and not delivered:
            lines = (ROOT / "target" / "send-hook-receiver.log").read_text().splitlines()
            delivered = [json.loads(l) for l in lines if l.startswith("{") and sent_id in l]
            time.sleep(0.1)
        check("the receiver example got it, signed, with the code in its text",
              len(delivered) == 1 and delivered[0]["code"] in delivered[0]["text"], delivered)
    finally:
        peers.stop(receiver)


def invoke_function(port, watch_env, function, payload, name):
    """`payload` through `cargo lambda invoke <function>` (its file kept in target/); the answer."""
    path = ROOT / "target" / f"{function}-{name}.json"
    path.write_text(json.dumps(payload))
    run = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
         "--invoke-port", str(port), "--data-file", str(path)],
        cwd=ROOT, env=watch_env, capture_output=True, text=True, timeout=900)
    check(f"{function} takes the {name} batch", run.returncode == 0, run.stderr[-2000:])
    return json.loads(run.stdout)


def check_fraud_guard(port, watch_env, table, hash_key):
    """The fraud-guard function under `cargo lambda`, fed the table's real stream records (as
    moto's DynamoDB Streams API returns them): SMS sends walking one 1,000-number block, made by
    the send-code binary, open the block's breaker; the same batch delivered again, whole or in
    part, counts nothing twice; the next send to the block is refused."""
    twilio = twilio_fake.TwilioFake()
    env = function_env(table, OTP_HASH_KEY=hash_key, **twilio.settings())
    template = (ROOT / "events" / "send-code-sms.json").read_text()

    def sends(numbers):
        events = [template.replace("+14155552671", f"+14155552{n:03d}")
                  .replace("user-123", f"walker-{n}").encode() for n in numbers]
        return run_function(ROOT / "target" / "debug" / "send-code", events, env,
                            "lambda-fraud-send-code")[0]

    def count(batch, name):
        return invoke_function(port, watch_env, "fraud-guard", {"Records": batch}, name)

    ddb = otp_aws.client("dynamodb", ENDPOINT)

    def tally_sent():
        items = ddb.scan(TableName=table, FilterExpression="begins_with(pk, :t)",
                         ExpressionAttributeValues={":t": {"S": "fraud:tally:blk:"}})["Items"]
        return [sum(b["s"] for b in json.loads(i["tally"]["S"])["b"].values()) for i in items]

    try:
        answers = sends(range(100, 125))
        check("25 SMS to one block are sent while nothing is counted yet",
              [a["statusCode"] for a in answers] == [200] * 25, answers[-1])
        records = stream_event(ENDPOINT, table)
        inserts = [r for r in records if r["eventName"] == "INSERT"
                   and r["dynamodb"]["Keys"]["pk"]["S"].startswith("login#")]
        check("the stream holds the records the sends wrote", len(inserts) >= 25, len(inserts))
        half = count(records[: len(records) // 2], "first-half")
        check("the first half is counted with no failure", half == {"batchItemFailures": []}, half)
        whole = count(records, "whole")
        check("the whole batch, half of it delivered before, is counted",
              whole == {"batchItemFailures": []}, whole)
        check("each send is counted once", tally_sent() == [25], tally_sent())
        again = count(records, "redelivered")
        check("a redelivered batch answers without failure", again == {"batchItemFailures": []}, again)
        check("and counts nothing twice", tally_sent() == [25], tally_sent())
        listing = ddb.get_item(TableName=table, Key={"pk": {"S": "fraud:breakers"}}).get("Item", {})
        opened = [k for k in listing if k.startswith("blk:")]
        check("the block's breaker is listed", len(opened) == 1, listing)
        check("with a hint, not the number", listing[opened[0]]["M"]["hint"]["S"] == "+1 41…", listing)
        refused = sends([200])[0]
        body = json.loads(refused["body"])
        check("the next send to the block is 403 fraud_suspected",
              refused["statusCode"] == 403 and body["error"] == "fraud_suspected", refused)
        check("only the 25 SMS reached Twilio", len(twilio.messages) == 25, len(twilio.messages))
    finally:
        twilio.close()


class Outbox:
    """What the events function writes to: an events queue (with its dead-letter queue), an
    EventBridge bus whose rule copies every event to a capture queue, and a webhook receiver
    that checks signatures with the Standard Webhooks reference library and refuses its first
    delivery."""

    def __init__(self):
        import base64
        import http.server
        import threading
        from standardwebhooks.webhooks import Webhook
        self.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.sqs = otp_aws.client("sqs", ENDPOINT)
        suffix = os.getpid()
        self.queue = self.sqs.create_queue(QueueName=f"otp-events-{suffix}")["QueueUrl"]
        self.captured = self.sqs.create_queue(QueueName=f"otp-bus-capture-{suffix}")["QueueUrl"]
        captured_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.captured, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bridge = otp_aws.client("events", ENDPOINT)
        self.bus = f"otp-e2e-{suffix}"
        bridge.create_event_bus(Name=self.bus)
        bridge.put_rule(Name="all-otp", EventBusName=self.bus,
                        EventPattern=json.dumps({"source": ["otp-service"]}))
        bridge.put_targets(Rule="all-otp", EventBusName=self.bus,
                           Targets=[{"Id": "capture", "Arn": captured_arn}])
        self.deliveries, secret = [], self.secret

        outbox = self

        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = dict(self.headers)
                try:
                    event = Webhook(secret).verify(body, headers)
                except Exception as error:  # noqa: BLE001 - recorded as a failed check
                    event = {"unverified": str(error)}
                first = not outbox.deliveries
                outbox.deliveries.append((headers["webhook-id"], event))
                self.send_response(500 if first else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def settings(self):
        return [f"OTP_WEBHOOK_URL=http://127.0.0.1:{self.server.server_port}/otp-events",
                f'OTP_WEBHOOK_SECRET="{self.secret}"', f"OTP_EVENTS_QUEUE_URL={self.queue}",
                f"OTP_EVENT_BUS={self.bus}"]

    def receive(self, queue, wait=0):
        """Messages of `queue`, as the event source mapping receives them."""
        got = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                       MessageAttributeNames=["All"], AttributeNames=["All"])
        return got.get("Messages", [])

    def close(self):
        self.server.shutdown()


def sqs_event(messages, queue_arn):
    """SQS messages in the event shape Lambda hands the function."""
    def attribute(value):
        return {"stringValue": value["StringValue"], "dataType": value["DataType"],
                "stringListValues": [], "binaryListValues": []}
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "md5OfBody": m["MD5OfBody"],
        "messageAttributes": {k: attribute(v) for k, v in m.get("MessageAttributes", {}).items()},
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    } for m in messages]}


def check_events(port, watch_env, table, outbox):
    """The events function under `cargo lambda`, fed the table's real stream records and then
    its queue's messages: the code user-123 verified is written down as approved; its events
    are queued and put on EventBridge; the webhook gets them signed, and the one delivery it
    refused again, under the same id."""
    def invoke(payload, name):
        return invoke_function(port, watch_env, "events", payload, name)

    ddb = otp_aws.client("dynamodb", ENDPOINT)
    first = stream_event(ENDPOINT, table)
    answer = invoke({"Records": first}, "stream")
    check("the stream batch has no failure", answer == {"batchItemFailures": []}, answer)
    items = ddb.scan(TableName=table, FilterExpression="begins_with(pk, :v)",
                     ExpressionAttributeValues={":v": {"S": "ver:"}})["Items"]
    mine = [i for i in items if i["user"]["S"] == "user-123"]
    check("user-123's verification is written down as approved",
          len(mine) == 1 and mine[0].get("st", {}).get("S") == "approved", mine)
    vid = mine[0]["pk"]["S"].removeprefix("ver:")
    status, body = http_get(f"http://127.0.0.1:{port}/lambda-url/verify-code/verifications/{vid}")
    check("the lookup says approved", status == 200 and body["status"] == "approved", (status, body))
    # SES's receipt of that email (its configuration set's event on EventBridge): delivered.
    ses = json.loads((ROOT / "events" / "events-ses-bounce.json").read_text())
    ses["detail-type"], ses["detail"]["eventType"] = "Email Delivered", "Delivery"
    ses["detail"]["mail"]["tags"]["verification_id"] = [vid]
    taken = invoke(ses, "ses-receipt")
    check("SES's delivery event is recorded", taken == {"receipt": "applied"}, taken)
    status, body = http_get(f"http://127.0.0.1:{port}/lambda-url/verify-code/verifications/{vid}")
    check("the lookup says delivered", body.get("delivery", {}).get("status") == "delivered",
          (status, body))
    later = stream_event(ENDPOINT, table)[len(first):]
    answer = invoke({"Records": later}, "stream-endings")
    check("the endings' own changes are taken", answer == {"batchItemFailures": []}, answer)
    messages = outbox.receive(outbox.queue)
    queued = {(m["MessageAttributes"]["webhook-id"]["StringValue"]) for m in messages}
    check("its sent, delivered and approved events are queued",
          {f"evt_{vid}_sent", f"evt_{vid}_delivered", f"evt_{vid}_approved"} <= queued, queued)
    bus = [json.loads(m["Body"]) for m in outbox.receive(outbox.captured, wait=1)]
    kinds = {(e.get("detail-type"), e.get("detail", {}).get("data", {}).get("verification_id"))
             for e in bus}
    check("EventBridge got them, typed", {("verification.sent", vid), ("verification.approved", vid)}
          <= kinds, kinds)
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{outbox.queue.rsplit('/', 1)[-1]}"
    answer = invoke(sqs_event(messages, queue_arn), "queue")
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    check("the one delivery the webhook refused is reported failed", len(failed) == 1, answer)
    verified = [event for _, event in outbox.deliveries]
    check("every delivery passes the reference library's check",
          all("unverified" not in e for e in verified), verified)
    check("approved reached the webhook",
          any(e.get("type") == "verification.approved" for e in verified), verified)
    check("no event holds a code or a full address",
          all("user@example.com" not in json.dumps(e) for e in verified), verified)
    refused_id = outbox.deliveries[0][0]
    again = [m for m in messages if m["MessageId"] in failed]
    time.sleep(6)  # the first retry's delay: the message is visible again after it
    redelivered = [m for m in outbox.receive(outbox.queue) if m["MessageId"] in failed] or again
    answer = invoke(sqs_event(redelivered, queue_arn), "queue-retry")
    check("the retry is delivered", answer == {"batchItemFailures": []}, answer)
    check("under the same webhook-id", [i for i, _ in outbox.deliveries].count(refused_id) == 2,
          outbox.deliveries)


def http_get(url, key=DEV_KEY):
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def run_function(binary, events, env, log_name):
    """`binary` run as Lambda runs it on `events` (bytes): its answers (the API Gateway responses
    it posted), its log (kept at target/<log_name>.log) and its process id."""
    log = ROOT / "target" / f"{log_name}.log"
    with open(log, "wb") as output, lambda_runtime.Invocation(binary, events, env, output) as invocation:
        answers = [json.loads(r) for r in invocation.wait(120)]
    return answers, log.read_text(), invocation.process.pid


def statuses(binary, events, env, log_name):
    """`binary` run as Lambda runs it on `events`: the status codes it answers, and its log."""
    answers, text, _ = run_function(binary, events, env, log_name)
    return [answer["statusCode"] for answer in answers], text


def check_root_certificates(table, binaries=None):
    binaries = binaries or {name: ROOT / "target" / "debug" / name
                            for name in ("send-code", "verify-code")}
    for name, binary in binaries.items():
        check(f"cargo lambda built {name}", binary.is_file(), binary)
    bundle = next((b for b in BUNDLES if os.path.isfile(b)), None)
    check("this system has a CA bundle", bundle, BUNDLES)
    twilio = twilio_fake.TwilioFake()
    # As on Lambda: no SSL_CERT_FILE or SSL_CERT_DIR, so the function picks the bundle itself
    # (for Twilio's client: the AWS clients trust Amazon's built-in roots and read no file).
    env = function_env(table, OTP_HASH_KEY=os.urandom(32).hex(),
                       OTP_TOKEN_SIGNING_KEY=os.urandom(32).hex(),
                       EMAIL_FROM="no-reply@lambda-e2e.example.com", **twilio.settings())
    events = ROOT / "events"
    email = (events / "send-code-email.json").read_bytes().replace(b"user-123", b"user-roots")
    sms = (events / "send-code-sms.json").read_bytes().replace(b"user-123", b"user-roots-sms")
    verify = (events / "verify-code.json").read_bytes()
    opens = FileOpens(CERT_DIRS)
    try:
        with open(bundle, "rb"):
            pass
        check("the watch sees a read of the bundle", opens.take(os.getpid()) == [bundle], bundle)
        for name, sent, expected, files in [("send-code", [email, sms], [200, 200], [bundle]),
                                            ("verify-code", [verify], [404], [])]:
            answers, text, pid = run_function(binaries[name], sent, env, f"lambda-roots-{name}")
            answers = [answer["statusCode"] for answer in answers]
            check(f"{name} answers {expected}", answers == expected, (answers, text[-2000:]))
            opened = opens.take(pid)
            check(f"{name} reads {'the CA bundle once' if files else 'no certificate file'} and "
                  "nothing else of the certificate directories", opened == files, opened)
        check("the SMS reached the Twilio fake", len(twilio.messages) == 1, twilio.messages)
    finally:
        opens.close()
        twilio.close()
    # The same binaries with DynamoDB and SES over real TLS (a front for moto, its own CA).
    directory = ROOT / "target" / "lambda-e2e-tls"
    env = dict(env, SSL_CERT_FILE=str(tls_front.make_certificates(directory)))
    front = tls_front.TlsFront(directory, int(ENDPOINT.rsplit(":", 1)[1]))
    env["AWS_ENDPOINT_URL"] = f"https://127.0.0.1:{front.port}"
    email = email.replace(b"user-roots", b"user-roots-tls")
    try:
        # By default the AWS clients trust Amazon's roots only: the front's CA is in the system's
        # bundle (SSL_CERT_FILE), which they do not read, so its certificate is refused.
        answers, text = statuses(binaries["verify-code"], [verify], env, "lambda-tls-refused")
        check("with Amazon's roots (the default) the AWS client refuses another CA's certificate",
              answers == [503] and "UnknownIssuer" in text, (answers, text[-2000:]))
        # Told to trust the system's bundle, or exactly a file's roots (Amazon's five and the
        # front's CA), they reach DynamoDB and SES over TLS.
        for roots in ["system", str(directory / "amazon-roots.pem")]:
            env["OTP_AWS_TRUST_ROOTS"] = roots
            # Another user each time (a send starts the destination's resend cooldown).
            sent_email = email.replace(b"user-roots-tls", f"user-roots-tls-{roots[-3:]}".encode())
            for name, sent, expected in [("send-code", [sent_email], [200]),
                                         ("verify-code", [verify], [404])]:
                answers, text = statuses(binaries[name], sent, env, f"lambda-tls-{name}")
                check(f"{name} trusting {pathlib.Path(roots).name} reaches DynamoDB"
                      f"{' and SES' if name == 'send-code' else ''} over TLS",
                      answers == expected, (answers, text[-2000:]))
        check_secrets_in_one_request(env, front, email, verify)
    finally:
        front.close()


def check_secrets_in_one_request(env, front, email, verify):
    """As the template deploys the functions: every secret in Secrets Manager, in the formats
    the template generates (64 alphanumerics; the API keys as {"name", "key"} JSON), API keys on,
    Twilio configured. Each function reads all of its secrets in ONE request at init, over one
    connection, and reads none it does not need."""
    manager = otp_aws.client("secretsmanager", ENDPOINT)
    alphabet = string.ascii_letters + string.digits

    def secret(name, value):
        return manager.create_secret(Name=f"otp-e2e-{name}-{os.getpid()}", SecretString=value)["ARN"]

    generated = lambda: "".join(secrets.choice(alphabet) for _ in range(64))  # noqa: E731
    deployed = {k: v for k, v in env.items()
                if k not in ("OTP_HASH_KEY", "OTP_TOKEN_SIGNING_KEY", "OTP_API_KEYS", "TWILIO_AUTH_TOKEN")}
    deployed.update(
        OTP_HASH_KEY_SECRET_ARN=secret("hash-key", generated()),
        OTP_TOKEN_SIGNING_KEY_SECRET_ARN=secret("token-key", generated()),
        OTP_API_KEYS_SECRET_ARN=secret("api-keys", json.dumps({"name": "local", "key": DEV_KEY})),
        TWILIO_AUTH_TOKEN_SECRET_ARN=secret("twilio", json.dumps({"auth_token": "e2e-token"})),
    )
    email = email.replace(b"user-roots-tls", b"user-deployed")
    for name, sent, expected in [("send-code", [email], [200]), ("verify-code", [verify], [404])]:
        binary = ROOT / "target" / "debug" / name
        before = len(front.connections)
        answers, text = statuses(binary, sent, deployed, f"lambda-deployed-{name}")
        check(f"{name} as deployed (secrets from Secrets Manager) answers {expected}",
              answers == expected, (answers, text[-2000:]))
        connections = front.connections[before:]
        reads = [op for connection in connections for op in connection if op.startswith("secretsmanager.")]
        check(f"{name} reads its secrets in one BatchGetSecretValue",
              reads == ["secretsmanager.BatchGetSecretValue"], reads)
        over = [c for c in connections if any(op.startswith("secretsmanager.") for op in c)]
        check(f"{name} reads them over one connection", len(over) == 1, connections)


if __name__ == "__main__":
    main()
