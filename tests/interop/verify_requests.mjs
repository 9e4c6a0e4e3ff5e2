// Requests that libwebhook delivered (through a binding), verified with the npm package
// standardwebhooks, as a receiving system written in JavaScript would.
//
//   node verify_requests.mjs REQUESTS.jsonl
//
// One JSON object a line: {"secrets": ["whsec_...", ...], "headers": {"webhook-id", "webhook-timestamp",
// "webhook-signature"}, "body_b64": "..."}. Each request must verify with every secret listed (an endpoint
// whose secret was rotated signs with both during the grace period), and must be refused once its body,
// its id or its timestamp is changed. The body is passed as a Buffer and, when it is valid UTF-8, also as a
// string.
//
// Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Webhook, WebhookVerificationError } = require("standardwebhooks");
const pkgVersion = require("standardwebhooks/package.json").version;

const [path] = process.argv.slice(2);
if (!path) {
  console.error("usage: node verify_requests.mjs REQUESTS.jsonl");
  process.exit(2);
}

let checks = 0;
let failures = 0;
function check(cond, msg) {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL (node) ${msg}`);
  }
}

// "ok", "refused" (the package's own verification error), or what else was thrown.
function verdict(secret, payload, headers) {
  try {
    new Webhook(secret).verify(payload, headers, { jsonParse: false });
    return "ok";
  } catch (e) {
    return e instanceof WebhookVerificationError ? "refused" : `exception ${e?.name}: ${e?.message}`;
  }
}

function utf8String(buf) {
  try {
    const s = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(buf);
    return Buffer.from(s, "utf8").equals(buf) ? s : null;
  } catch {
    return null;
  }
}

const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "");
check(lines.length > 0, `${path}: no requests`);
lines.forEach((line, n) => {
  const req = JSON.parse(line);
  const body = Buffer.from(req.body_b64, "base64");
  const h = req.headers;
  const entries = h["webhook-signature"].split(" ");
  check(entries.length === req.secrets.length, `request ${n}: ${entries.length} signatures for ${req.secrets.length} secrets`);
  const forms = [["buffer", body]];
  const str = utf8String(body);
  if (str !== null) forms.push(["string", str]);
  for (const [si, secret] of req.secrets.entries()) {
    for (const [form, payload] of forms) {
      const v = verdict(secret, payload, h);
      check(v === "ok", `request ${n} (${h["webhook-id"]}), secret #${si}, ${form}: ${v}`);
    }
    // The package's own signature must be one of the header's entries, byte for byte.
    const mine = new Webhook(secret).sign(h["webhook-id"], new Date(Number(h["webhook-timestamp"]) * 1000), body);
    check(entries.includes(mine), `request ${n}, secret #${si}: sign() gave ${mine}, not in the header`);
    // Tampered: body, id, timestamp.
    const tampered = [
      ["body", Buffer.concat([body, Buffer.from(" ")]), h],
      ["id", body, { ...h, "webhook-id": `${h["webhook-id"]}x` }],
      ["timestamp", body, { ...h, "webhook-timestamp": String(Number(h["webhook-timestamp"]) - 1) }],
    ];
    for (const [what, payload, headers] of tampered)
      check(verdict(secret, payload, headers) === "refused", `request ${n}, secret #${si}: a changed ${what} was accepted`);
  }
});

console.log(`verify_requests.mjs: standardwebhooks ${pkgVersion}: ${lines.length} requests, ${checks} checks, ${failures} failed`);
process.exit(failures ? 1 : 0);
