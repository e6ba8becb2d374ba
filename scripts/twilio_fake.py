"""Twilio's Create Message as a local HTTP server, for the tests and benchmarks that run the real
binaries (the cargo tests use the wiremock fake in tests/api/twilio_fake.rs): the account's
Messages.json path, HTTP Basic auth with the account SID and token, To, Body and From (or
MessagingServiceSid), answered with Twilio's status codes and error bodies."""
import base64
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SID = "AC" + "0" * 32
TOKEN = "twilio-test-token"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        fake = self.server.fake
        fields = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
            self.answer(404, {"code": 20404, "message": "The requested resource was not found"})
        elif self.headers.get("Authorization") != f"Basic {auth}":
            self.answer(401, {"code": 20003, "message": "Authenticate"})
        elif not fields.get("To") or not fields.get("Body") or not (
                fields.get("From") or fields.get("MessagingServiceSid")):
            self.answer(400, {"code": 21604, "message": "A 'To', 'Body' and 'From' are required"})
        else:
            fake.messages.append(fields)
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

    def __init__(self):
        self.messages = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def settings(self):
        """The functions' environment for sending through this fake."""
        return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                "TWILIO_PHONE_NUMBER": "+15005550006",
                "TWILIO_API_BASE_URL": f"http://127.0.0.1:{self.server.server_address[1]}"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
