"""A send hook receiver (docs/delivery.md#send-hook): checks each request's Standard Webhooks
signature with the `standardwebhooks` library, then delivers the message. Here "delivers" prints
the request's data as one JSON line, a stand-in for your provider's API call (never log codes in
production).

    pip install standardwebhooks
    SEND_HOOK_SECRET=whsec_... PORT=8001 python send_hook_receiver.py
"""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["SEND_HOOK_SECRET"])


class SendHook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            event = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError:
            self.send_response(401)
            self.end_headers()
            return
        data = event["data"]
        # Your provider here: data["text"] to data["to"] (sms, whatsapp, voice), or
        # data["email"]["subject"/"html"/"text"] to data["to"] (email). Answer 422 for a
        # destination your provider refuses.
        print(json.dumps(data), flush=True)
        answer = json.dumps({"message_id": "local-" + data["verification_id"]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8001"))), SendHook)
print(f"send hook listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
