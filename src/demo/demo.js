// The demo sign-in page: request a code, verify it, show what the token says and check its
// signature against the service's published keys (WebCrypto Ed25519). No external scripts.
"use strict";

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  let json = {};
  try {
    json = await response.json();
  } catch (_) {
    // Every answer of the service is JSON; anything else is reported by status.
  }
  return { status: response.status, json };
}

function detailOf(json) {
  if (typeof json.detail === "string") return json.detail;
  if (Array.isArray(json.detail)) return json.detail.map((d) => d.msg).join("; ");
  return "Something went wrong.";
}

function base64UrlBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function decodePart(part) {
  return JSON.parse(new TextDecoder().decode(base64UrlBytes(part)));
}

async function checkSignature(token, header) {
  const [head, payload, signature] = token.split(".");
  const set = await (await fetch("/.well-known/jwks.json")).json();
  const jwk = set.keys.find((k) => k.kid === header.kid);
  if (!jwk) return "no published key has this token's kid";
  if (!(crypto.subtle && crypto.subtle.importKey)) return "this browser has no WebCrypto";
  try {
    const key = await crypto.subtle.importKey(
      "jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" }, key, base64UrlBytes(signature),
      new TextEncoder().encode(head + "." + payload));
    return ok ? true : "the signature does not match";
  } catch (error) {
    return "this browser cannot check Ed25519 (" + error.name + ")";
  }
}

$("request-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("request").disabled = true;
  say("Sending…");
  try {
    const { status, json } = await postJson("/auth/request-otp", { email: $("email").value });
    if (status === 200) {
      say(json.message + " (" + json.email + "). Enter it below.");
      $("verify-form").hidden = false;
      $("code").focus();
    } else {
      say(detailOf(json), true);
    }
  } catch (error) {
    say("The service cannot be reached: " + error.message, true);
  } finally {
    $("request").disabled = false;
  }
});

$("verify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("verify").disabled = true;
  try {
    const { status, json } = await postJson("/auth/verify-otp", {
      email: $("email").value,
      otp_code: $("code").value.trim(),
    });
    if (status !== 200) {
      say(detailOf(json), true);
      return;
    }
    say(json.message);
    const token = json.verification_token;
    const [head, payload] = token.split(".");
    const header = decodePart(head);
    $("header").textContent = JSON.stringify(header, null, 2);
    $("claims").textContent = JSON.stringify(decodePart(payload), null, 2);
    $("token").textContent = token;
    $("result").hidden = false;
    const checked = await checkSignature(token, header);
    $("signature").textContent = checked === true
      ? "Signature valid (EdDSA, key " + header.kid + ")"
      : "Signature not checked: " + checked;
    $("signature").className = checked === true ? "ok" : "bad";
  } catch (error) {
    say("The service cannot be reached: " + error.message, true);
  } finally {
    $("verify").disabled = false;
  }
});
