"""Twilio's Create Message and Create Call as a local HTTP server, for the tests and benchmarks
that run the real binaries and for `make dynamodb-local` (the cargo tests use the wiremock fake
in tests/api/twilio_fake.rs): the account's Messages.json and Calls.json paths, HTTP Basic auth
with the account SID and token; a message needs To and From (or MessagingServiceSid) and a Body,
or for WhatsApp (whatsapp: on both ends) a ContentSid; a call needs To, From and Twiml. Answered
with Twilio's status codes and error bodies. With `echo`, each accepted request is printed (a
development console: that is where a developer reads the code)."""
import base64
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SID = "AC" + "0" * 32
TOKEN = "twilio-test-token"


class _Handler(BaseHTTPRequestHandler):
    # Twilio's API does not hold an answer's body back behind its head (http.server writes them
    # apart, and Nagle would delay the body until the client's ACK: time `make bench` counted).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        fake = self.server.fake
        fields = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        one = {k: v[0] for k, v in fields.items()}
        base = f"/2010-04-01/Accounts/{SID}/"
        if self.path not in (base + "Messages.json", base + "Calls.json"):
            self.answer(404, {"code": 20404, "message": "The requested resource was not found"})
        elif self.headers.get("Authorization") != f"Basic {auth}":
            self.answer(401, {"code": 20003, "message": "Authenticate"})
        elif self.path.endswith("Calls.json"):
            if not (one.get("To") and one.get("From") and one.get("Twiml")):
                self.answer(400, {"code": 21205, "message": "'To', 'From' and 'Twiml' are required"})
            else:
                fake.accept(fields, "call", one["To"], one["Twiml"])
                self.answer(201, {"sid": "CA" + os.urandom(16).hex(), "status": "queued"})
        elif not one.get("To") or not (one.get("From") or one.get("MessagingServiceSid")):
            self.answer(400, {"code": 21604, "message": "A 'To' and a 'From' are required"})
        elif one["To"].startswith("whatsapp:"):
            if not one.get("From", "").startswith("whatsapp:") or not one.get("ContentSid"):
                self.answer(400, {"code": 63007, "message": "WhatsApp needs whatsapp: senders and a ContentSid"})
            else:
                fake.accept(fields, "whatsapp", one["To"],
                            f"template {one['ContentSid']} {one.get('ContentVariables', '')}")
                self.answer(201, {"sid": "SM" + os.urandom(16).hex(), "status": "queued"})
        elif not one.get("Body"):
            self.answer(400, {"code": 21602, "message": "Message body is required"})
        else:
            fake.accept(fields, "sms", one["To"], one["Body"])
            self.answer(201, {"sid": "SM" + os.urandom(16).hex(), "status": "queued"})

    def answer(self, status, body):
        data = json.dumps(dict(body, status=status) if status >= 400 else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class TwilioFake:
    """Serves on a free loopback port until `close()`; `messages` holds each accepted form."""

    def __init__(self, port=0, echo=False):
        self.messages = []
        self.echo = echo
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accept(self, fields, kind, to, text):
        self.messages.append(fields)
        if self.echo:
            print(f"[twilio-fake] {kind} to {to}: {text}", flush=True)

    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def settings(self):
        """The functions' environment for sending through this fake."""
        return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                "TWILIO_PHONE_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": self.url()}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
