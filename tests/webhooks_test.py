"""Events out, checked by a receiver as the Standard Webhooks reference library (`standardwebhooks`
from PyPI) checks them: the local server binary with OTP_WEBHOOK_URL pointing at a receiver in this
process, which refuses its first delivery.

Usage: python -m unittest tests/webhooks_test.py (after the binary is built: `make test` does both).
"""
import base64
import http.server
import json
import os
import pathlib
import re
import subprocess
import threading
import time
import unittest
import urllib.request

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "debug" / "otp-service"
CODE = re.compile(r"code is (\d{4,10})")
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Receiver(http.server.ThreadingHTTPServer):
    """Records every delivery; answers 500 to the very first one, 204 to the rest."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.deliveries = []
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.server.lock:
            first = not self.server.deliveries
            self.server.deliveries.append((dict(self.headers), body))
        self.send_response(500 if first else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


class WebhooksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BINARY.exists():
            raise SystemExit(f"{BINARY} is missing: build it first (make test does)")
        cls.receiver = Receiver()
        threading.Thread(target=cls.receiver.serve_forever, daemon=True).start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "TWILIO_", "AWS_"))}
        env.update(PORT="0", RUST_LOG="warn", OTP_LOCKOUT_FAILURES="3",
                   OTP_WEBHOOK_URL=f"http://127.0.0.1:{cls.receiver.server_port}/otp-events",
                   OTP_WEBHOOK_SECRET=SECRET)
        cls.server = subprocess.Popen([str(BINARY)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=env, text=True)
        banner = cls.server.stdout.readline()
        if not banner.startswith("OTP service listening on "):
            raise SystemExit(f"the server did not start: {banner!r} {cls.server.stderr.read()}")
        cls.url = banner.split()[-1]
        cls.lines = []
        threading.Thread(target=lambda: cls.lines.extend(cls.server.stdout), daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(20)
        cls.receiver.shutdown()

    def call(self, path, body=None):
        request = urllib.request.Request(self.url + path, data=json.dumps(body or {}).encode(),
                                         headers={"content-type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def last_code(self, before):
        deadline = time.time() + 10
        while time.time() < deadline:
            codes = [m.group(1) for line in list(self.lines) for m in [CODE.search(line)] if m]
            if len(codes) > before:
                return codes[-1]
            time.sleep(0.05)
        self.fail("no code printed")

    def codes_printed(self):
        return sum(1 for line in list(self.lines) if CODE.search(line))

    def send(self, user):
        before = self.codes_printed()
        status, body = self.call("/send-code", {"user_id": user, "method": "sms", "phone": "+14155552671"})
        self.assertEqual(status, 200, body)
        return body["verification_id"], self.last_code(before)

    def events_until(self, wanted, timeout=30):
        """The verified events received, once every (id, type) in `wanted` is among them."""
        deadline = time.time() + timeout
        while True:
            with self.receiver.lock:
                deliveries = list(self.receiver.deliveries)
            events = [(headers, Webhook(SECRET).verify(body, headers)) for headers, body in deliveries]
            seen = {(e["data"]["verification_id"], e["type"]) for _, e in events}
            if wanted <= seen or time.time() > deadline:
                return deliveries, events
            time.sleep(0.2)

    def test_every_event_is_signed_retried_under_its_id_and_carries_no_code(self):
        # GIVEN codes that are approved, canceled, and guessed wrong until the user is locked out
        approved, code = self.send("hook-approved")
        self.assertEqual(self.call("/verify-code", {"user_id": "hook-approved", "passcode": code})[0], 200)
        canceled, _ = self.send("hook-canceled")
        self.assertEqual(self.call(f"/verifications/{canceled}/cancel")[0], 200)
        exhausted, code = self.send("hook-wrong")
        wrong = "".join(str((int(d) + 1) % 10) for d in code)
        for _ in range(3):
            self.call("/verify-code", {"user_id": "hook-wrong", "passcode": wrong})
        wanted = {(approved, "verification.sent"), (approved, "verification.approved"),
                  (canceled, "verification.sent"), (canceled, "verification.canceled"),
                  (exhausted, "verification.sent"), (exhausted, "verification.max_attempts_reached"),
                  (exhausted, "verification.locked")}
        # WHEN the receiver has taken them (its first delivery refused)
        deliveries, events = self.events_until(wanted)
        # THEN each was signed as the reference library checks, and every wanted event came
        seen = {(e["data"]["verification_id"], e["type"]) for _, e in events}
        self.assertLessEqual(wanted, seen)
        # AND the refused first delivery comes again (within seconds), with the same webhook-id
        # and body
        first_headers, first_body = deliveries[0]
        deadline = time.time() + 20
        while time.time() < deadline:
            with self.receiver.lock:
                deliveries = list(self.receiver.deliveries)
            if sum(h["webhook-id"] == first_headers["webhook-id"] for h, _ in deliveries) > 1:
                break
            time.sleep(0.2)
        again = [(h, b) for h, b in deliveries[1:] if h["webhook-id"] == first_headers["webhook-id"]]
        self.assertTrue(again, "the refused delivery was not retried")
        self.assertEqual(again[0][1], first_body)
        # AND each event has the documented shape, with no code and no full number
        for headers, event in events:
            self.assertEqual(set(event), {"type", "timestamp", "data"})
            self.assertRegex(event["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(event["data"]["destination"], "+1******2671")
            self.assertEqual(event["data"]["purpose"], "default")
            self.assertTrue(headers["webhook-id"].startswith("evt_"))
        raw = b"".join(body for _, body in deliveries)
        self.assertNotIn(b"4155552671", raw)
        for _, event in events:
            self.assertFalse({"code", "passcode", "otp"} & set(event["data"]))
            for key, value in event["data"].items():
                if key != "verification_id":
                    self.assertNotIn(code, str(value), key)
        # AND a tampered body or another secret does not pass the reference check
        headers, body = deliveries[-1]
        with self.assertRaises(WebhookVerificationError):
            Webhook(SECRET).verify(body.replace(b"verification", b"Verification"), headers)
        other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        with self.assertRaises(WebhookVerificationError):
            Webhook(other).verify(body, headers)


if __name__ == "__main__":
    unittest.main()
