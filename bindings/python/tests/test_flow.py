"""The Casebook flow through the Python binding, against a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import tempfile
import unittest
from datetime import datetime, timezone
from email.message import Message

import libwebhook as wh

from support import PERSON, TENANT, USER, Receiver, standardwebhooks_verify


class CasebookFlowTest(unittest.TestCase):
    def setUp(self) -> None:
        self.rx = Receiver()
        self.addCleanup(self.rx.close)

    def flow(self, store: str) -> None:
        with wh.Registry(store) as reg:
            ep = reg.add_endpoint(
                "CRM people sync",
                self.rx.url,
                description="Sends new and changed people to the CRM",
                filters=["people.*"],
                headers={"X-Casebook-Tenant": TENANT},
            )
            got = reg.endpoint(ep)
            self.assertEqual(got["name"], "CRM people sync")
            self.assertEqual(got["filters"], ["people.*"])
            self.assertEqual(got["headers"], {"X-Casebook-Tenant": TENANT})
            self.assertTrue(got["enabled"])
            self.assertEqual([e["id"] for e in reg.endpoints()], [ep])
            secret = reg.secret(ep)
            self.assertTrue(secret.startswith("whsec_"))

            with wh.Dispatcher(reg, workers=2, allow_private_networks=True, retry_schedule=[1, 1],
                               timeout_ms=5000) as d:
                d.start()
                when = datetime(2024, 3, 26, 18, 53, 16, 818049, tzinfo=timezone.utc)
                msg = d.emit("people", "CREATE", PERSON, tenant_id=TENANT, user_id=USER,
                             resource_id=PERSON["id"], time=when)
                self.assertTrue(msg.startswith("msg_"))
                # Another type: filtered out, never delivered.
                d.emit("cases", "CREATE", {"id": "c1"}, tenant_id=TENANT)
                d.drain(timeout=10.0)

                results = list(d.results(timeout=0.5))
                self.assertEqual(len(results), 1, results)
                r = results[0]
                self.assertEqual((r.message_id, r.endpoint_id, r.outcome, r.attempt, r.http_status, r.error),
                                 (msg, ep, "delivered", 1, 200, None))
                self.assertFalse(r.endpoint_disabled)
                self.assertIsNone(r.next_attempt_at)

                log = reg.message(msg)
                self.assertEqual(log["id"], msg)
                self.assertEqual(log["event_type"], "people.CREATE")
                self.assertEqual(log["deliveries"][0]["endpoint_id"], ep)
                self.assertEqual(log["deliveries"][0]["state"], "delivered")
                self.assertEqual(log["deliveries"][0]["attempts"][0]["http_status"], 200)

        (req,) = self.rx.wait_for(1)
        self.assertEqual(req.header("webhook-id"), msg)
        self.assertEqual(req.header("x-casebook-tenant"), TENANT)
        self.assertEqual(req.header("content-type"), "application/json")
        # The envelope, byte for byte: the product page's keys in its order.
        expected = (
            '{"resource":' + json.dumps(PERSON, separators=(",", ":")) + f',"tenant_id":"{TENANT}",'
            f'"user_id":"{USER}","resource_id":"{PERSON["id"]}","resource_type":"people",'
            '"event_type":"CREATE","event_time":"2024-03-26T18:53:16.818049Z"}'
        )
        self.assertEqual(req.body.decode(), expected)
        # Signatures: this binding's verify, with headers in any case and any mapping ...
        wh.verify(secret, req.headers, req.body)
        wh.verify(secret, {k.upper(): v for k, v in req.headers.items()}, req.body.decode())
        message = Message()
        for k, v in req.headers.items():
            message[k] = v
        wh.verify(secret, message, req.body)
        # ... and the npm standardwebhooks package's.
        (verdict,) = standardwebhooks_verify(secret, [req])
        self.assertTrue(verdict["ok"], verdict)
        self.assertEqual(verdict["payload"]["resource"], PERSON)

    def test_memory_store(self) -> None:
        self.flow("memory:")

    def test_default_store_is_memory(self) -> None:
        self.flow(None)  # type: ignore[arg-type]

    def test_sqlite_store(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            self.flow("sqlite:" + os.path.join(tmp, "webhooks.db"))

    def test_emit_batch_and_str_resource(self) -> None:
        with wh.Registry() as reg, wh.Dispatcher(reg, allow_private_networks=True) as d:
            reg.add_endpoint("all", self.rx.url)
            d.start()
            raw = '{"id":"p2","big":12345678901234567890,"f":1.50}'
            ids = d.emit_batch([wh.Event("people", "UPDATE", raw, resource_id="p2"),
                                wh.Event("people", "DELETE", {"id": "p3"})])
            self.assertEqual(len(ids), 2)
            self.assertEqual(len(set(ids)), 2)
            d.drain(timeout=10.0)
            outcomes = {r.message_id: r.outcome for r in d.results(timeout=0.5)}
            self.assertEqual(outcomes, {ids[0]: "delivered", ids[1]: "delivered"})
        by_id = {r.header("webhook-id"): r.body.decode() for r in self.rx.wait_for(2)}
        # A str resource goes out as written: big numbers and "1.50" untouched.
        self.assertIn('"resource":' + raw + ",", by_id[ids[0]])
        self.assertEqual(json.loads(by_id[ids[1]])["event_type"], "DELETE")

    def test_failures_are_results_with_retries(self) -> None:
        self.rx.status = 503
        with wh.Registry() as reg, wh.Dispatcher(reg, allow_private_networks=True, retry_schedule=[0.2],
                                                 retry_jitter_pct=0) as d:
            ep = reg.add_endpoint("failing", self.rx.url)
            d.start()
            msg = d.emit("people", "CREATE", {"id": "p1"})
            first = d.next_result(timeout=10.0)
            second = d.next_result(timeout=10.0)
        assert first is not None and second is not None
        self.assertEqual((first.message_id, first.endpoint_id, first.outcome, first.attempt, first.http_status),
                         (msg, ep, "retrying", 1, 503))
        self.assertIsNotNone(first.error)
        self.assertIsInstance(first.next_attempt_at, datetime)
        self.assertEqual((second.outcome, second.attempt, second.http_status), ("failed", 2, 503))

    def test_loopback_refused_by_default(self) -> None:
        with wh.Registry() as reg, wh.Dispatcher(reg, retry_schedule=[]) as d:
            reg.add_endpoint("loopback", self.rx.url)
            d.start()
            d.emit("people", "CREATE", {"id": "p1"})
            r = d.next_result(timeout=10.0)
        assert r is not None
        self.assertEqual(r.outcome, "failed")
        self.assertEqual(r.http_status, 0)
        self.assertEqual(self.rx.requests, [])

    def test_errors_carry_code_and_detail(self) -> None:
        with wh.Registry() as reg:
            with self.assertRaises(wh.InvalidArgument) as e:
                reg.add_endpoint("bad", "ftp://example.com/")
            self.assertEqual(e.exception.code, wh.constants.EINVAL)
            self.assertIn("url", e.exception.detail)
            reg.add_endpoint("dup", "https://example.com/a")
            with self.assertRaises(wh.AlreadyExists):
                reg.add_endpoint("dup", "https://example.com/b")
            with self.assertRaises(wh.NotFound) as nf:
                reg.endpoint("ep_nope")
            self.assertIsInstance(nf.exception, LookupError)
            with self.assertRaises(wh.InvalidArgument):
                reg.add_endpoint("bad filter", "https://example.com/c", filters=["no spaces allowed"])
            # All or nothing: the refused filter took its endpoint with it.
            self.assertEqual([e["name"] for e in reg.endpoints()], ["dup"])
            with self.assertRaises(wh.InvalidArgument):
                reg.add_endpoint("nul\0name", "https://example.com/d")
            d = wh.Dispatcher(reg)
            with self.assertRaises(wh.StateError):
                d.emit("people", "CREATE", {})  # before start
            with self.assertRaises(wh.InvalidArgument):
                d.emit("people", "CREATE", [1, 2])  # type: ignore[arg-type]
            with self.assertRaises(wh.InvalidArgument):
                d.emit("people", "CREATE", {}, time=datetime(2024, 1, 1))  # naive: refused
            d.close()
            d.close()  # idempotent
            with self.assertRaises(wh.StateError):
                d.start()
            with self.assertRaises(wh.InvalidArgument):
                wh.Dispatcher(reg, no_such_option=1)
            with self.assertRaises(wh.InvalidArgument):
                wh.Dispatcher(reg, workers=0)

    def test_drain_timeout(self) -> None:
        self.rx.hang = 3.0
        with wh.Registry() as reg, wh.Dispatcher(reg, allow_private_networks=True) as d:
            reg.add_endpoint("slow", self.rx.url)
            d.start()
            d.emit("people", "CREATE", {"id": "p1"})
            with self.assertRaises(wh.Timeout) as e:
                d.drain(timeout=0.3)
            self.assertIsInstance(e.exception, TimeoutError)
            d.drain(timeout=10.0)


if __name__ == "__main__":
    unittest.main()
