"""Tenant views through the binding: reg.tenant("acme") has the registry's methods,
limited to that tenant."""

from __future__ import annotations

import unittest

import libwebhook as wh

from support import Receiver


class TenantTest(unittest.TestCase):
    def setUp(self) -> None:
        self.rx = Receiver()
        self.addCleanup(self.rx.close)
        self.reg = wh.Registry()
        self.addCleanup(self.reg.close)

    def test_views_see_only_their_tenant(self) -> None:
        acme = self.reg.tenant("acme")
        beta = self.reg.tenant("beta")
        self.addCleanup(acme.close)
        self.addCleanup(beta.close)
        self.assertEqual(acme.tenant_id, "acme")
        self.assertIsNone(self.reg.tenant_id)
        platform = self.reg.add_endpoint("platform", self.rx.url + "/platform")
        a = acme.add_endpoint("crm", self.rx.url + "/acme", filters=["people.*"])
        b = beta.add_endpoint("crm", self.rx.url + "/beta")  # same name, other tenant: fine
        self.assertEqual([e["id"] for e in acme.endpoints()], [a])
        self.assertEqual(acme.endpoint(a)["tenant_id"], "acme")
        self.assertIsNone(self.reg.endpoint(platform)["tenant_id"])
        self.assertEqual({e["id"] for e in self.reg.endpoints()}, {platform, a, b})
        for view, other in ((acme, b), (beta, a), (acme, platform)):
            with self.subTest(view=view.tenant_id, other=other):
                with self.assertRaises(wh.NotFound):
                    view.endpoint(other)
                with self.assertRaises(wh.NotFound):
                    view.set_enabled(other, False)
                with self.assertRaises(wh.NotFound):
                    view.secret(other)
        with self.assertRaises(wh.AlreadyExists):
            acme.add_endpoint("crm", self.rx.url)
        with self.assertRaises(wh.InvalidArgument):
            wh.Dispatcher(acme)
        with self.assertRaises(wh.InvalidArgument):
            self.reg.tenant("")

        with wh.Dispatcher(self.reg, allow_private_networks=True) as d:
            d.start()
            msg = d.emit("people", "CREATE", {"id": "p1"}, tenant_id="acme")
            d.drain(timeout=10.0)
            outcomes = {r.endpoint_id: r.outcome for r in d.results(timeout=0.3)}
            self.assertEqual(outcomes, {a: "delivered", platform: "delivered"})
            paths = sorted(r.path for r in self.rx.wait_for(2))
            self.assertEqual(paths, ["/hooks/acme", "/hooks/platform"])
            # The attempt log through a view: only the tenant's deliveries.
            self.assertEqual([x["endpoint_id"] for x in acme.message(msg)["deliveries"]], [a])
            with self.assertRaises(wh.NotFound):
                beta.message(msg)

    def test_tenant_endpoint_limit(self) -> None:
        self.reg.set_tenant_max_endpoints(1)
        with self.reg.tenant("acme") as acme:
            acme.add_endpoint("one", self.rx.url)
            with self.assertRaises(wh.QueueFull):
                acme.add_endpoint("two", self.rx.url)
            with self.assertRaises(wh.InvalidArgument):
                acme.set_tenant_max_endpoints(5)

    def test_view_outlives_its_root(self) -> None:
        reg = wh.Registry()
        acme = reg.tenant("acme")
        acme.add_endpoint("crm", self.rx.url)
        reg.close()
        self.assertEqual(len(acme.endpoints()), 1)
        acme.close()
        acme.close()


if __name__ == "__main__":
    unittest.main()
