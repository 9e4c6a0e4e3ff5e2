// The node half of the interoperability test (see interop.c).
//
//   node verify.mjs CASES.jsonl [RESULTS.jsonl [SIGNED.jsonl]]
//
// 1. Verifies every case libwebhook signed with the standardwebhooks npm
//    package's Webhook class, for each of the case's secrets, passing the body
//    as a Buffer (and, when it is valid UTF-8, also as a string), and checks
//    the verdict the case expects ("ok", "signature" or "timestamp"). For a
//    good case it also checks that Webhook#sign yields one of the header's
//    entries, byte for byte. One JSON line per verdict goes to RESULTS.
// 2. Signs cases of its own with Webhook#sign (its own secrets, one of
//    libwebhook's, the reference vector's; JS strings, Buffers and the bodies
//    libwebhook used), plus tampered and out-of-tolerance versions, checks its
//    own verdict on each, and writes them to SIGNED for libwebhook to verify.
//
// Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.
//
// What the package does, read from its dist/index.js (1.1.1): the secret's
// "whsec_" prefix is optional and the rest is strict base64; a Buffer payload
// is turned into a string with buf.toString() (UTF-8, invalid bytes become
// U+FFFD) and re-encoded with TextEncoder, so only valid UTF-8 bodies are
// byte-exact; verify() JSON.parses the payload unless {jsonParse: false}; the
// timestamp tolerance is 300 s both ways (parseInt, so "123abc" passes as 123);
// signatures are compared as base64 text.
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Webhook, WebhookVerificationError } = require("standardwebhooks");
const pkgVersion = require("standardwebhooks/package.json").version;

const [casesPath, resultsArg, signedArg] = process.argv.slice(2);
if (!casesPath) {
  console.error("usage: node verify.mjs CASES.jsonl [RESULTS.jsonl [SIGNED.jsonl]]");
  process.exit(2);
}
const resultsPath = resultsArg ?? `${casesPath}.results.jsonl`;
const signedPath = signedArg ?? `${casesPath}.signed.jsonl`;

let failures = 0;
let checks = 0;
function fail(msg) {
  failures++;
  console.error(`FAIL (node) ${msg}`);
}
function check(cond, msg) {
  checks++;
  if (!cond) fail(msg);
  return cond;
}

// The verdict of one call: "ok", "signature", "timestamp", or what else happened.
function verdict(fn) {
  try {
    return { got: "ok", value: fn() };
  } catch (e) {
    if (e instanceof WebhookVerificationError) {
      if (e.message === "No matching signature found") return { got: "signature", detail: e.message };
      if (/timestamp too (old|new)|Invalid Signature Headers/.test(e.message))
        return { got: "timestamp", detail: e.message };
      return { got: `verification-error`, detail: e.message };
    }
    return { got: "exception", detail: `${e?.name}: ${e?.message}` };
  }
}

// The body as a string when it is valid UTF-8 that round-trips byte for byte.
function utf8String(buf) {
  try {
    const s = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(buf);
    return Buffer.from(s, "utf8").equals(buf) ? s : null;
  } catch {
    return null;
  }
}

function headerValue(headers, name) {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

// ---------------------------------------------------------------------------
// Self-check: the Standard Webhooks reference vector.
{
  const wh = new Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const sig = wh.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", new Date(1614265330 * 1000), '{"test": 2432232314}');
  check(sig === "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", `reference vector: got ${sig}`);
}

// ---------------------------------------------------------------------------
// 1. libwebhook's cases.
const cases = readFileSync(casesPath, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));
const results = [];
const counts = { cases: 0, verdicts: 0, informational: [] };

for (const c of cases) {
  counts.cases++;
  const body = Buffer.from(c.body_b64, "base64");
  check(body.toString("base64") === c.body_b64, `${c.name}: body_b64 is not canonical base64`);
  const headers = c.raw_headers ?? {
    "webhook-id": c.id,
    "webhook-timestamp": c.timestamp,
    "webhook-signature": c.signature,
  };
  const str = utf8String(body);
  const forms = [["buffer", body]];
  if (str !== null) forms.push(["string", str]);
  let parsed;
  let isJson = false;
  if (str !== null && str !== "") {
    try {
      parsed = JSON.parse(str);
      isJson = true;
    } catch {}
  }

  c.secrets.forEach((secret, si) => {
    let wh;
    try {
      wh = new Webhook(secret);
    } catch (e) {
      results.push({ name: c.name, secret: si, form: "constructor", expect: c.expect, got: "exception", detail: e.message, pass: false });
      fail(`${c.name}: new Webhook(secret #${si}) threw ${e.message}`);
      return;
    }
    for (const [form, payload] of forms) {
      const opts = { jsonParse: c.expect === "ok" && isJson };
      const v = verdict(() => wh.verify(payload, headers, opts));
      let pass = v.got === c.expect;
      let detail = v.detail ?? "";
      if (pass && c.expect === "ok") {
        // verify() parses JSON bodies by default: it must give the same value.
        if (isJson && JSON.stringify(v.value) !== JSON.stringify(parsed)) {
          pass = false;
          detail = "verify() returned a different JSON value";
        }
        // And sign() must produce one of the header's entries exactly.
        const mine = wh.sign(headerValue(headers, "webhook-id"), new Date(Number(headerValue(headers, "webhook-timestamp")) * 1000), payload);
        const entries = headerValue(headers, "webhook-signature").split(" ");
        if (!entries.includes(mine)) {
          pass = false;
          detail = `sign() gave ${mine}, not among the header's entries`;
        }
      }
      if (c.informational) {
        counts.informational.push(`${c.name} [${form}, secret #${si}]: expected ${c.expect}, standardwebhooks says ${v.got}${v.detail ? ` (${v.detail})` : ""}`);
        pass = true;
      } else {
        checks++;
        if (!pass) fail(`${c.name} [${form}, secret #${si}]: expected ${c.expect}, got ${v.got} ${detail}`);
      }
      counts.verdicts++;
      results.push({ name: c.name, secret: si, form, expect: c.expect, got: v.got, detail, pass, ...(c.informational ? { informational: true } : {}) });
    }
  });
}
writeFileSync(resultsPath, results.map((r) => JSON.stringify(r)).join("\n") + "\n");

// ---------------------------------------------------------------------------
// 2. Our own signatures, for libwebhook to verify.
const b64 = (n) => randomBytes(n).toString("base64");
const secrets = [
  ["node-24", `whsec_${b64(24)}`],
  ["node-32", `whsec_${b64(32)}`],
  ["node-64", `whsec_${b64(64)}`],
  ["node-32-no-prefix", b64(32)],
  ["vector", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
];
const fromC = cases.find((c) => c.name.startsWith("generated-1/"));
if (check(fromC, "no generated-1 case from libwebhook")) secrets.push(["libwebhook-generated", fromC.secrets[0]]);

const payloads = [
  ["js-object", JSON.stringify({ type: "people.CREATE", name: "Zoë Brée", emoji: "🚀👩‍💻", ja: "こんにちは", ls: "\u2028", nested: { a: [1, 2.5, -3e10, true, null] } })],
  ["js-empty", ""],
  ["js-100KiB", `{"blob":"${"é€𝄞x".repeat(10 * 1024)}"}`],
  ["js-buffer", Buffer.from('{"buffer":true,"ü":"\u00fc","nul":"\u0000"}', "utf8")],
];
// And libwebhook's own valid UTF-8 bodies, as Buffers.
for (const c of cases) {
  if (!c.name.startsWith("generated-1/") || c.expect !== "ok" || c.name.includes("/ts") || c.name.includes("/extra")) continue;
  const buf = Buffer.from(c.body_b64, "base64");
  if (utf8String(buf) !== null) payloads.push([`c-${c.name.slice("generated-1/".length)}`, buf]);
}
check(payloads.length >= 8, `only ${payloads.length} payloads to sign`);

// The bytes the package actually signs for a payload.
const signedBytes = (p) => Buffer.from(typeof p === "string" ? p : p.toString(), "utf8");

const signed = [];
function emit(name, secret, id, date, payload, signature, expect, bodyBytes) {
  const ts = String(Math.floor(date.getTime() / 1000));
  // Our own verdict first: the package must agree with what we ask of libwebhook.
  const v = verdict(() => new Webhook(secret).verify(bodyBytes, { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": signature }, { jsonParse: false }));
  check(v.got === expect, `self-check ${name}: expected ${expect}, got ${v.got} ${v.detail ?? ""}`);
  signed.push({ name, secret, id, timestamp: ts, body_b64: bodyBytes.toString("base64"), signature, expect });
}

let n = 0;
for (const [sname, secret] of secrets) {
  const wh = new Webhook(secret);
  for (const [pname, payload] of payloads) {
    const bytes = signedBytes(payload);
    if (typeof payload !== "string")
      check(bytes.equals(payload), `${pname}: Buffer payload is not byte-exact through the package`);
    const id = n % 3 === 0 ? `msg_${randomBytes(18).toString("base64url")}` : n % 3 === 1 ? "evt.with.dots:1" : `msg_ünïcødé_${n}`;
    n++;
    const date = new Date(); // with milliseconds: the package floors to seconds
    const sig = wh.sign(id, date, payload);
    const name = `${sname}/${pname}`;
    emit(name, secret, id, date, payload, sig, "ok", bytes);

    if (pname === "js-object" || pname === "js-empty") {
      const ts = Math.floor(date.getTime() / 1000);
      // Tampered: body, id, timestamp, signature, each alone.
      const tb = Buffer.concat([bytes, Buffer.from(" ")]);
      emit(`${name}/tampered-body`, secret, id, date, payload, sig, "signature", tb);
      emit(`${name}/tampered-id`, secret, `${id}x`, date, payload, sig, "signature", bytes);
      emit(`${name}/tampered-timestamp`, secret, id, new Date((ts + 1) * 1000), payload, sig, "signature", bytes);
      const ts2 = sig.slice(0, 3) + (sig[3] === "Q" ? "R" : "Q") + sig.slice(4);
      emit(`${name}/tampered-signature`, secret, id, date, payload, ts2, "signature", bytes);
      // Tolerance.
      for (const [label, delta, expect] of [["ts-600", -600, "timestamp"], ["ts+600", 600, "timestamp"], ["ts-120", -120, "ok"], ["ts+120", 120, "ok"]]) {
        const d = new Date((ts + delta) * 1000);
        emit(`${name}/${label}`, secret, id, d, payload, wh.sign(id, d, payload), expect, bytes);
      }
    }
  }
}
writeFileSync(signedPath, signed.map((r) => JSON.stringify(r)).join("\n") + "\n");

for (const line of counts.informational) console.log(`note (informational): ${line}`);
console.log(
  `verify.mjs: standardwebhooks ${pkgVersion}: ${counts.cases} libwebhook cases, ${counts.verdicts} verdicts; ` +
    `${signed.length} cases signed for libwebhook; ${checks} checks, ${failures} failed`,
);
process.exit(failures ? 1 : 0);
