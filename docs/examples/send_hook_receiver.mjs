// A send hook receiver (docs/delivery.md#send-hook): checks each request's Standard Webhooks
// signature with the `standardwebhooks` package, then delivers the message. Here "delivers"
// prints the request's data as one JSON line, a stand-in for your provider's API call (never log
// codes in production).
//
//   npm install standardwebhooks
//   SEND_HOOK_SECRET=whsec_... PORT=8001 node send_hook_receiver.mjs
import http from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.SEND_HOOK_SECRET);

const server = http.createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    let event;
    try {
      event = webhook.verify(body, request.headers);
    } catch {
      response.writeHead(401).end();
      return;
    }
    const data = event.data;
    // Your provider here: data.text to data.to (sms, whatsapp, voice), or data.email's subject,
    // html and text to data.to (email). Answer 422 for a destination your provider refuses.
    console.log(JSON.stringify(data));
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ message_id: `local-${data.verification_id}` }));
  });
});

server.listen(Number(process.env.PORT ?? 8001), "127.0.0.1", () => {
  console.log(`send hook listening on http://127.0.0.1:${server.address().port}`);
});
