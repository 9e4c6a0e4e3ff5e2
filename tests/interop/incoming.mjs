// Interoperability of wh_receiver with the senders' own libraries (run by
// interop_incoming, see incoming.c):
//
//   node incoming.mjs OURS.jsonl VERDICTS.jsonl THEIRS.jsonl
//
// 1. OURS: requests libwebhook signed (wh_sign, Standard Webhooks). Each is
//    verified by svix's Webhook (under svix-* and webhook-* header names) and by
//    standardwebhooks' Webhook; the verdict must be the case's "expect".
//    One JSON line per verdict goes to VERDICTS.
// 2. THEIRS: requests signed by the real libraries, as the senders sign them:
//      standard  standardwebhooks Webhook#sign, svix Webhook#sign (svix-* headers)
//      github    @octokit/webhooks-methods sign() (X-Hub-Signature-256)
//      stripe    stripe.webhooks.generateTestHeaderString() (Stripe-Signature)
//      slack     HMAC-SHA256 of "v0:" + ts + ":" + body as Slack's documentation
//                describes it ("Verifying requests from Slack"), checked first
//                against the example request of that page
//    with tampered, wrong-secret, rotated and out-of-tolerance versions. Each
//    case says what wh_receiver_check must answer for each of its checks, in
//    order, on one fresh receiver holding the case's secrets ("ok" then
//    "exist" for a good request: the second check is a replay), and the id it
//    must report. The sender library's own verifier (when it has one) must
//    agree on good and tampered versions: the cases are real ones.
//
// Exit status: 0 when every check here passed, 1 otherwise, 2 on bad usage.
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { sign as githubSign, verify as githubVerify } from "@octokit/webhooks-methods";

const require = createRequire(import.meta.url);
const svix = require("svix");
const standardwebhooks = require("standardwebhooks");
const Stripe = require("stripe");
const versions = Object.fromEntries(
  ["svix", "standardwebhooks", "stripe", "@octokit/webhooks-methods"].map((p) => [
    p,
    JSON.parse(readFileSync(new URL(`node_modules/${p}/package.json`, import.meta.url), "utf8")).version,
  ]),
);

const [oursPath, verdictsPath, theirsPath] = process.argv.slice(2);
if (!oursPath || !verdictsPath || !theirsPath) {
  console.error("usage: node incoming.mjs OURS.jsonl VERDICTS.jsonl THEIRS.jsonl");
  process.exit(2);
}

let failures = 0;
let checks = 0;
function check(cond, msg) {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL (node) ${msg}`);
  }
  return cond;
}

// "ok", "signature", "timestamp" or what else a verifier said.
function verdict(fn) {
  try {
    fn();
    return "ok";
  } catch (e) {
    const m = String(e?.message ?? e);
    if (/No matching signature|No signatures found matching/.test(m)) return "signature";
    if (/timestamp too (old|new)|Invalid Signature Headers|outside the tolerance/i.test(m)) return "timestamp";
    return `error: ${m.split("\n")[0]}`;
  }
}

function isJson(s) {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// 1. libwebhook's signatures, verified by svix and standardwebhooks.
const ours = readFileSync(oursPath, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const verdicts = [];
for (const c of ours) {
  const body = Buffer.from(c.body_b64, "base64");
  const payload = body.toString("utf8");
  const std = { "webhook-id": c.id, "webhook-timestamp": c.timestamp, "webhook-signature": c.signature };
  const sv = { "svix-id": c.id, "svix-timestamp": c.timestamp, "svix-signature": c.signature };
  const runs = [["standardwebhooks", () => new standardwebhooks.Webhook(c.secret).verify(payload, std, { jsonParse: false })]];
  // svix's verify() returns the parsed JSON, so it has no verdict on a body that is not JSON.
  if (isJson(payload))
    runs.push(
      ["svix (svix-* headers)", () => new svix.Webhook(c.secret).verify(payload, sv)],
      ["svix (webhook-* headers)", () => new svix.Webhook(c.secret).verify(payload, std)],
    );
  for (const [lib, fn] of runs) {
    const got = verdict(fn);
    check(got === c.expect, `libwebhook's ${c.name}: ${lib} says ${got}, expected ${c.expect}`);
    verdicts.push({ name: c.name, lib, expect: c.expect, got });
  }
}
writeFileSync(verdictsPath, verdicts.map((v) => JSON.stringify(v)).join("\n") + "\n");

// ---------------------------------------------------------------------------
// 2. The senders' signatures, for wh_receiver_check.
const theirs = [];
const now = () => Math.floor(Date.now() / 1000);
// One case: a fresh receiver with the case's secrets, then its steps in order,
// each a request and the verdict and id expected.
function emit(c) {
  check(!theirs.some((t) => t.name === c.name), `duplicate case name ${c.name}`);
  const steps = c.steps ?? c.checks.map((expect) => ({ headers: c.headers, body: c.body, expect, id: c.id }));
  theirs.push({
    name: c.name,
    scheme: c.scheme,
    secrets: c.secrets,
    steps: steps.map((st) => ({ headers: st.headers, body_b64: Buffer.from(st.body, "utf8").toString("base64"), expect: st.expect, id: st.id ?? null })),
  });
}
const good = ["ok", "exist"];

const bodies = {
  person: JSON.stringify({
    resource: { last_name: "Doe", first_name: "John", id: "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543" },
    tenant_id: "be461bd7-2d91-41c6-ab29-4389066bcc71",
    event_type: "CREATE",
  }),
  unicode: JSON.stringify({ name: "Zoë Brée", emoji: "🚀👩‍💻", ja: "こんにちは", ls: "\u2028" }),
  big: `{"blob":"${"é€𝄞x".repeat(20 * 1024)}"}`,
};
const tamper = (s) => (s.length ? s.slice(0, -1) + (s.endsWith("}") ? " }" : "x") : "x");

// ---- standard: standardwebhooks and svix sign ----------------------------------
{
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const secret2 = `whsec_${randomBytes(24).toString("base64")}`;
  const wrong = `whsec_${randomBytes(32).toString("base64")}`;
  const signers = [
    ["standardwebhooks", (s) => new standardwebhooks.Webhook(s), ["webhook-id", "webhook-timestamp", "webhook-signature"]],
    ["svix", (s) => new svix.Webhook(s), ["svix-id", "svix-timestamp", "svix-signature"]],
  ];
  for (const [lib, make, names] of signers) {
    const req = (s, id, ts, body, sig) => [
      [names[0], id],
      [names[1], String(ts)],
      [names[2], sig ?? make(s).sign(id, new Date(ts * 1000), body)],
    ];
    for (const [bname, body] of [...Object.entries(bodies), ["empty", ""]]) {
      const id = `msg_${randomBytes(12).toString("hex")}`;
      const t = now();
      const headers = req(secret, id, t, body);
      // The sender library's own verifier accepts what it signed.
      const h = Object.fromEntries(headers);
      if (isJson(body))
        check(verdict(() => make(secret).verify(body, h)) === "ok", `${lib}/${bname}: the library refuses its own signature`);
      emit({ name: `standard/${lib}/${bname}`, scheme: "standard", secrets: [secret], headers, body, checks: good, id });
      if (bname !== "person") continue;
      const tb = tamper(body);
      check(verdict(() => make(secret).verify(tb, h)) === "signature", `${lib}: the library accepts a tampered body`);
      emit({ name: `standard/${lib}/tampered-body`, scheme: "standard", secrets: [secret], headers, body: tb, checks: ["signature", "signature"] });
      emit({ name: `standard/${lib}/wrong-secret`, scheme: "standard", secrets: [wrong], headers, body, checks: ["signature"] });
      // Rotation: the sender signs with two secrets; a receiver holding either accepts.
      const two = `${make(secret).sign(id, new Date(t * 1000), body)} ${make(secret2).sign(id, new Date(t * 1000), body)}`;
      emit({ name: `standard/${lib}/rotation`, scheme: "standard", secrets: [secret2], headers: req(null, id, t, body, two), body, checks: good, id });
      for (const [label, delta, expect] of [["ts-600", -600, "timestamp"], ["ts+600", 600, "timestamp"], ["ts-200", -200, "ok"], ["ts+200", 200, "ok"]]) {
        const hid = `${id}_${label}`;
        const hh = req(secret, hid, t + delta, body);
        check(verdict(() => make(secret).verify(body, Object.fromEntries(hh))) === expect, `${lib}/${label}: the library disagrees`);
        emit({ name: `standard/${lib}/${label}`, scheme: "standard", secrets: [secret], headers: hh, body, checks: expect === "ok" ? good : [expect], id: hid });
      }
    }
  }
}

// ---- github: @octokit/webhooks-methods signs -----------------------------------
{
  const secret = `gh-${randomBytes(20).toString("hex")}`;
  const secret2 = "It's a Secret to Everybody";
  // GitHub's documented example, through the package.
  check((await githubSign(secret2, "Hello, World!")) === "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "octokit: GitHub's example");
  for (const [bname, body] of [...Object.entries(bodies), ["hello", "Hello, World!"]]) {
    const sig = await githubSign(secret, body);
    const id = randomUUID();
    check(await githubVerify(secret, body, sig), `octokit/${bname}: the library refuses its own signature`);
    const headers = [["X-GitHub-Event", "push"], ["X-GitHub-Delivery", id], ["X-Hub-Signature-256", sig]];
    emit({ name: `github/${bname}`, scheme: "github", secrets: [secret], headers, body, checks: good, id });
    if (bname !== "person") continue;
    const tb = tamper(body);
    check(!(await githubVerify(secret, tb, sig)), "octokit: the library accepts a tampered body");
    emit({ name: "github/tampered-body", scheme: "github", secrets: [secret], headers, body: tb, checks: ["signature"] });
    emit({ name: "github/wrong-secret", scheme: "github", secrets: [secret2], headers, body, checks: ["signature"] });
    // Lower case header names, as Node's http module hands them over.
    emit({ name: "github/lowercase-names", scheme: "github", secrets: [secret2, secret], headers: headers.map(([n, v]) => [n.toLowerCase(), v === id ? `${id}-lc` : v]), body, checks: good, id: `${id}-lc` });
    // The legacy sha1 header alone is not enough (the package no longer makes it).
    const sha1 = `sha1=${createHmac("sha1", secret).update(body).digest("hex")}`;
    emit({ name: "github/sha1-only", scheme: "github", secrets: [secret], headers: [["X-GitHub-Delivery", id], ["X-Hub-Signature", sha1]], body, checks: ["invalid"] });
  }
}

// ---- stripe: stripe.webhooks.generateTestHeaderString signs -------------------------
{
  const stripe = new Stripe("sk_test_interop_not_a_key");
  const secret = `whsec_${randomBytes(24).toString("hex")}`;
  const secret2 = `whsec_${randomBytes(24).toString("hex")}`;
  const event = (extra) => JSON.stringify({ id: `evt_${randomBytes(12).toString("hex")}`, object: "event", type: "charge.succeeded", data: { object: { amount: 2000, currency: "eur", description: "Zoë's order €" } }, ...extra });
  const header = (payload, s, timestamp) => stripe.webhooks.generateTestHeaderString({ payload, secret: s, timestamp });
  const stripeVerdict = (payload, h, s) => verdict(() => stripe.webhooks.constructEvent(payload, h, s));
  for (const bname of ["event", "unicode-event"]) {
    const body = bname === "event" ? event() : event({ note: bodies.unicode });
    const id = JSON.parse(body).id;
    const t = now();
    const h = header(body, secret, t);
    check(stripeVerdict(body, h, secret) === "ok", `stripe/${bname}: the library refuses its own signature`);
    // Then Stripe retrying the same event: new t, new signature, same event id: a duplicate.
    const retry = header(body, secret, t - 120);
    const first = { headers: [["Stripe-Signature", h]], body, id };
    emit({ name: `stripe/${bname}`, scheme: "stripe", secrets: [secret], steps: [
      { ...first, expect: "ok" }, { ...first, expect: "exist" }, { headers: [["Stripe-Signature", retry]], body, id, expect: "exist" }] });
    if (bname !== "event") continue;
    const tb = body.replace("2000", "2001");
    check(stripeVerdict(tb, h, secret) === "signature", "stripe: the library accepts a tampered body");
    emit({ name: "stripe/tampered-body", scheme: "stripe", secrets: [secret], headers: [["Stripe-Signature", h]], body: tb, checks: ["signature"] });
    emit({ name: "stripe/wrong-secret", scheme: "stripe", secrets: [secret2], headers: [["Stripe-Signature", h]], body, checks: ["signature"] });
    // During a rotation Stripe sends one v1 per secret; as a header built from two.
    const both = `${h},v1=${header(body, secret2, t).split("v1=")[1]}`;
    check(stripeVerdict(body, both, secret2) === "ok", "stripe: the library refuses the rotation header");
    emit({ name: "stripe/rotation", scheme: "stripe", secrets: [secret2], headers: [["Stripe-Signature", both]], body, checks: good, id });
    // The test-mode v0 scheme alone does not count.
    const v0 = stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp: t, scheme: "v0" });
    emit({ name: "stripe/v0-only", scheme: "stripe", secrets: [secret], headers: [["Stripe-Signature", v0]], body, checks: ["signature"] });
    // Tolerance: Stripe's library refuses old timestamps only; wh_receiver refuses both ways.
    for (const [label, delta, expect, lib] of [["ts-600", -600, "timestamp", "timestamp"], ["ts+600", 600, "timestamp", "ok"], ["ts-200", -200, "ok", "ok"]]) {
      const b = event();
      const hh = header(b, secret, t + delta);
      check(stripeVerdict(b, hh, secret) === lib, `stripe/${label}: the library says ${stripeVerdict(b, hh, secret)}`);
      emit({ name: `stripe/${label}`, scheme: "stripe", secrets: [secret], headers: [["Stripe-Signature", hh]], body: b, checks: expect === "ok" ? good : [expect], id: JSON.parse(b).id });
    }
    // No event id in the body: derived from t and the signature.
    const noid = JSON.stringify({ object: "event", type: "ping" });
    const nh = header(noid, secret, t);
    emit({ name: "stripe/no-event-id", scheme: "stripe", secrets: [secret], headers: [["Stripe-Signature", nh]], body: noid, checks: good, id: `${t}.${nh.split("v1=")[1].slice(0, 32)}` });
  }
}

// ---- slack: signed as Slack's documentation describes --------------------------------
{
  const slackSign = (s, ts, body) => `v0=${createHmac("sha256", s).update(`v0:${ts}:${body}`).digest("hex")}`;
  // The example request of "Verifying requests from Slack".
  const docBody =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar" +
    "&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com" +
    "%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
  check(slackSign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, docBody) === "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", "slack: the documented example");
  const secret = randomBytes(16).toString("hex");
  const events = JSON.stringify({ token: "x", team_id: "T1", type: "event_callback", event_id: "Ev08MFMKH6", event: { type: "message", text: "Zoë 🚀" } });
  for (const [bname, body] of [["slash-command", docBody], ["events-api", events], ["empty", ""]]) {
    const t = now();
    const sig = slackSign(secret, t, body);
    const headers = [["X-Slack-Request-Timestamp", String(t)], ["X-Slack-Signature", sig]];
    emit({ name: `slack/${bname}`, scheme: "slack", secrets: [secret], headers, body, checks: good, id: `${t}.${sig.slice(3, 35)}` });
    if (bname !== "events-api") continue;
    emit({ name: "slack/tampered-body", scheme: "slack", secrets: [secret], headers, body: tamper(body), checks: ["signature"] });
    emit({ name: "slack/wrong-secret", scheme: "slack", secrets: [randomBytes(16).toString("hex")], headers, body, checks: ["signature"] });
    emit({ name: "slack/tampered-timestamp", scheme: "slack", secrets: [secret], headers: [["X-Slack-Request-Timestamp", String(t - 1)], ["X-Slack-Signature", sig]], body, checks: ["signature"] });
    for (const [label, delta, expect] of [["ts-600", -600, "timestamp"], ["ts+600", 600, "timestamp"], ["ts-200", -200, "ok"]]) {
      const s2 = slackSign(secret, t + delta, body);
      emit({ name: `slack/${label}`, scheme: "slack", secrets: [secret], headers: [["X-Slack-Request-Timestamp", String(t + delta)], ["X-Slack-Signature", s2]], body, checks: expect === "ok" ? good : [expect], id: `${t + delta}.${s2.slice(3, 35)}` });
    }
    // A Slack retry: a new timestamp, so a new request and a new id (the host
    // tells retries by X-Slack-Retry-Num, or by event_id in the body).
    const s3 = slackSign(secret, t - 30, body);
    emit({ name: "slack/retry", scheme: "slack", secrets: [secret], headers: [["X-Slack-Request-Timestamp", String(t - 30)], ["X-Slack-Signature", s3], ["X-Slack-Retry-Num", "1"]], body, checks: good, id: `${t - 30}.${s3.slice(3, 35)}` });
  }
}

writeFileSync(theirsPath, theirs.map((c) => JSON.stringify(c)).join("\n") + "\n");
const per = {};
for (const c of theirs) per[c.scheme] = (per[c.scheme] ?? 0) + 1;
console.log(
  `incoming.mjs: ${Object.entries(versions).map(([p, v]) => `${p} ${v}`).join(", ")}; ` +
    `${ours.length} libwebhook requests, ${verdicts.length} verdicts; ` +
    `${theirs.length} requests for libwebhook (${Object.entries(per).map(([s, n]) => `${s} ${n}`).join(", ")}); ` +
    `${checks} checks, ${failures} failed`,
);
process.exit(failures ? 1 : 0);
