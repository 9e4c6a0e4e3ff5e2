"""sign / verify / generate_secret: Standard Webhooks v1."""

from __future__ import annotations

import time
import unittest
from datetime import datetime, timezone

import libwebhook as wh

# The Standard Webhooks specification's reference vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = '{"test": 2432232314}'
SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


class SigningTest(unittest.TestCase):
    def test_reference_vector(self) -> None:
        self.assertEqual(wh.sign(SECRET, MSG_ID, TS, BODY), SIG)
        self.assertEqual(wh.sign(SECRET, MSG_ID, datetime.fromtimestamp(TS, timezone.utc), BODY.encode()), SIG)
        headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(TS), "webhook-signature": SIG}
        wh.verify(SECRET, headers, BODY, now=TS + 10)

    def test_verify_headers_any_case_and_rotation_lists(self) -> None:
        secret = wh.generate_secret()
        self.assertTrue(secret.startswith("whsec_"))
        now = int(time.time())
        sig = wh.sign(secret, "msg_1", now, b"{}")
        wh.verify(secret, {"Webhook-Id": "msg_1", "WEBHOOK-TIMESTAMP": str(now),
                           "webhook-signature": f"v1,bm90IGl0 {sig}"}, b"{}")
        wh.verify(secret, {"webhook-id": ["msg_1"], "webhook-timestamp": [str(now)],
                           "webhook-signature": [sig]}, bytearray(b"{}"))

    def test_verify_failures(self) -> None:
        now = int(time.time())
        secret = wh.generate_secret()
        sig = wh.sign(secret, "msg_1", now, b"{}")
        good = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": sig}
        with self.assertRaises(wh.SignatureError) as e:
            wh.verify(secret, good, b"{ }")
        self.assertEqual(e.exception.code, wh.constants.ESIGNATURE)
        with self.assertRaises(wh.SignatureError):
            wh.verify(wh.generate_secret(), good, b"{}")
        old = dict(good, **{"webhook-timestamp": str(now - 600)})
        with self.assertRaises(wh.TimestampError):
            wh.verify(secret, old, b"{}")
        for missing in good:
            with self.subTest(missing=missing), self.assertRaises(wh.InvalidArgument):
                wh.verify(secret, {k: v for k, v in good.items() if k != missing}, b"{}")
        with self.assertRaises(wh.InvalidArgument):
            wh.verify("whsec_not base64!", good, b"{}")
        with self.assertRaises(wh.InvalidArgument):
            wh.sign(secret, "", now, b"{}")

    def test_endpoint_signature_matches_sign(self) -> None:
        with wh.Registry() as reg:
            ep = reg.add_endpoint("e", "https://example.com/h")
            self.assertEqual(reg.signature(ep, "msg_1", TS, BODY), wh.sign(reg.secret(ep), "msg_1", TS, BODY))
            old = reg.secret(ep)
            reg.rotate_secret(ep, grace_seconds=60)
            self.assertNotEqual(reg.secret(ep), old)
            both = reg.signature(ep, "msg_1", TS, BODY).split(" ")
            self.assertEqual(both, [wh.sign(reg.secret(ep), "msg_1", TS, BODY), wh.sign(old, "msg_1", TS, BODY)])


class ReceiverTest(unittest.TestCase):
    def test_standard_scheme_and_replays(self) -> None:
        secret = wh.generate_secret()
        now = int(time.time())
        body = b'{"type":"people.CREATE"}'
        headers = {"Webhook-Id": "msg_rx1", "Webhook-Timestamp": str(now),
                   "Webhook-Signature": wh.sign(secret, "msg_rx1", now, body)}
        with wh.Receiver() as rx:
            rx.add_secret("standard", secret)
            self.assertEqual(rx.check(headers, body), "msg_rx1")
            with self.assertRaises(wh.AlreadyExists):
                rx.check(headers, body)  # the same request again: a replay
            with self.assertRaises(wh.SignatureError):
                rx.check(dict(headers, **{"Webhook-Id": "msg_rx2"}), body)
            with self.assertRaises(wh.InvalidArgument):
                rx.check({}, body)
            with self.assertRaises(wh.InvalidArgument):
                rx.add_secret("no-such-scheme", secret)


if __name__ == "__main__":
    unittest.main()
