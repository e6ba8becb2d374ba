"""The send hook (OTP_SEND_HOOK_*), against the real server binary: the receiver examples of
docs/examples (Python and Node, each checking signatures with its `standardwebhooks` library)
get SMS and email payloads whose codes verify; a receiver of this test, checking signatures with
the Python reference library, answers each class of answer (422, 500, a hang past the timeout);
a hook that is not listening; and a URL that is neither https:// nor loopback, refused at start.

Usage: python -m unittest tests/send_hook_test.py (after the binary is built and
docs/examples' node_modules installed: `make test` does both).
"""
import base64
import http.server
import json
import os
import pathlib
import re
import socket
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from standardwebhooks.webhooks import Webhook

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "debug" / "otp-service"
EXAMPLES = ROOT / "docs" / "examples"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PHONE = "+14155552671"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A process whose stdout lines are collected; stopped by its PID."""

    def __init__(self, command, env, banner):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, text=True, cwd=ROOT)
        first = self.process.stdout.readline()
        if not first.startswith(banner):
            self.process.kill()
            raise AssertionError(f"{command[0]} did not start: {first!r} {self.process.stderr.read()}")
        self.url = first.split()[-1]
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout),
                                       daemon=True)
        self.reader.start()

    def json_lines(self):
        found = []
        for line in list(self.lines):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
        return found

    def stop(self):
        self.process.terminate()
        self.process.wait(20)
        self.reader.join(5)  # it reads up to the end of the output before the pipe is closed
        self.process.stdout.close()
        self.process.stderr.close()


def server(**settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "TWILIO_", "AWS_"))}
    env.update(PORT="0", RUST_LOG="warn", OTP_SEND_HOOK_SECRET=SECRET, **settings)
    return Process([str(BINARY)], env, "OTP service listening on ")


def call(base, path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class Receiver(http.server.ThreadingHTTPServer):
    """This test's own hook: checks each request with the reference library, records it, and
    answers as `self.answer` says (a status, or "hang")."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.received, self.answer = [], 200


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        event = Webhook(SECRET).verify(body, dict(self.headers))
        self.server.received.append((dict(self.headers), event))
        if self.server.answer == "hang":
            time.sleep(3)
        self.send_response(self.server.answer if self.server.answer != "hang" else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


class SendHookTest(unittest.TestCase):
    def payload_for(self, receiver, id_):
        deadline = time.time() + 10
        while time.time() < deadline:
            mine = [d for d in receiver.json_lines() if d.get("verification_id") == id_]
            if mine:
                return mine[0]
            time.sleep(0.05)
        self.fail(f"the receiver got nothing for {id_}")

    def check_example(self, command):
        port = free_port()
        env = dict(os.environ, SEND_HOOK_SECRET=SECRET, PORT=str(port))
        receiver = Process(command, env, "send hook listening on ")
        service = server(OTP_SEND_HOOK_URL=f"http://127.0.0.1:{port}/otp")
        try:
            # An SMS: the hook gets the number, the text and the code, which verifies.
            status, sent = call(service.url, "/send-code", {"user_id": "hook-sms", "method": "sms",
                                                            "phone": PHONE, "purpose": "login",
                                                            "locale": "de"})
            self.assertEqual(status, 200, sent)
            data = self.payload_for(receiver, sent["verification_id"])
            self.assertEqual((data["channel"], data["to"], data["purpose"], data["locale"],
                              data["expires_in"]), ("sms", PHONE, "login", "de", 300))
            self.assertIn(data["code"], data["text"])
            self.assertNotIn("email", data)
            # The message id the hook answered is kept on the verification.
            request = urllib.request.Request(service.url + "/verifications/" + sent["verification_id"])
            with urllib.request.urlopen(request, timeout=30) as response:
                delivery = json.load(response)["delivery"]
            self.assertEqual(delivery.get("provider_message_id"), "local-" + sent["verification_id"],
                             delivery)
            status, verified = call(service.url, "/verify-code", {"user_id": "hook-sms",
                                                                  "passcode": data["code"],
                                                                  "purpose": "login"})
            self.assertEqual(status, 200, verified)
            # An email: subject, HTML and text, and no SMS text.
            status, sent = call(service.url, "/send-code", {"user_id": "hook-mail", "method": "email",
                                                            "email": "hook@example.com"})
            self.assertEqual(status, 200, sent)
            data = self.payload_for(receiver, sent["verification_id"])
            self.assertEqual((data["channel"], data["to"]), ("email", "hook@example.com"))
            self.assertEqual(set(data["email"]), {"subject", "html", "text"})
            self.assertIn(data["code"], data["email"]["html"])
            self.assertNotIn("text", data)
            status, _ = call(service.url, "/verify-code", {"user_id": "hook-mail",
                                                           "passcode": data["code"]})
            self.assertEqual(status, 200)
        finally:
            service.stop()
            receiver.stop()

    def test_the_python_example_receives_codes_that_verify(self):
        self.check_example([str(ROOT / ".venv" / "bin" / "python"), str(EXAMPLES / "send_hook_receiver.py")])

    def test_the_node_example_receives_codes_that_verify(self):
        if not (EXAMPLES / "node_modules" / "standardwebhooks").is_dir():
            raise AssertionError("docs/examples/node_modules is missing: make test installs it")
        self.check_example(["node", str(EXAMPLES / "send_hook_receiver.mjs")])

    def test_each_answer_of_the_hook_decides_like_a_provider(self):
        receiver = Receiver()
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        service = server(OTP_SEND_HOOK_URL=f"http://127.0.0.1:{receiver.server_port}/otp",
                         OTP_SEND_HOOK_TIMEOUT_MS="1000", OTP_SEND_HOOK_CHANNELS="sms")

        def send(user):
            return call(service.url, "/send-code", {"user_id": user, "method": "sms", "phone": PHONE})

        def answered(answer, user, error):
            """Sends with the hook answering `answer`; the send's error as asserted, then the
            status of verifying the code the hook received."""
            receiver.answer = answer
            status, body = send(user)
            self.assertEqual((status, body["error"]), error, body)
            code = receiver.received[-1][1]["data"]["code"]
            return call(service.url, "/verify-code", {"user_id": user, "passcode": code})[0]

        try:
            # 422: the destination is refused; the code is withdrawn (nothing to verify).
            self.assertEqual(answered(422, "hook-422", (422, "invalid_destination")), 404)
            # 500: uncertain; the code stays valid.
            self.assertEqual(answered(500, "hook-500", (502, "delivery_uncertain")), 200)
            # A hook that answers after the timeout: uncertain too.
            receiver.answer = "hang"
            status, body = send("hook-hang")
            self.assertEqual((status, body["error"]), (502, "delivery_uncertain"), body)
            # Every request was signed, under one id per delivery; email is not the hook's.
            ids = [headers["webhook-id"] for headers, _ in receiver.received]
            self.assertEqual(len(ids), len(set(ids)), ids)
            self.assertTrue(all(e["type"] == "otp.send" for _, e in receiver.received))
            status, body = call(service.url, "/send-code", {"user_id": "hook-mail", "method": "email",
                                                            "email": "not-hook@example.com"})
            self.assertEqual(status, 200, body)
            self.assertEqual(len(receiver.received), 3, "email went to its own provider")
        finally:
            service.stop()
            receiver.shutdown()

    def test_a_hook_that_is_not_listening_is_a_failed_delivery_that_costs_nothing(self):
        service = server(OTP_SEND_HOOK_URL=f"http://127.0.0.1:{free_port()}/otp")
        try:
            for _ in range(2):  # no cooldown was taken by the first
                status, body = call(service.url, "/send-code",
                                    {"user_id": "hook-down", "method": "sms", "phone": PHONE})
                self.assertEqual((status, body["error"]), (502, "delivery_failed"), body)
        finally:
            service.stop()

    def test_a_hook_url_that_is_not_https_is_refused_at_start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "TWILIO_", "AWS_"))}
        env.update(PORT="0", OTP_SEND_HOOK_URL="http://hooks.example.com/otp",
                   OTP_SEND_HOOK_SECRET=SECRET)
        run = subprocess.run([str(BINARY)], env=env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(run.returncode, 0)
        self.assertTrue(re.search(r"OTP_SEND_HOOK_URL.*https://", run.stdout + run.stderr),
                        run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main()
