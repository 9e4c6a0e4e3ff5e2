#!/usr/bin/env python3
"""The Casebook flow from Python: an administrator registers an outgoing webhook,
the application emits the person-CREATE event of the product page, and a
receiver (here in the same process, on 127.0.0.1) shows what it got and checks
the signature, as the receiving system would. Then the outcome and the attempt log.

    python3 examples/casebook.py [STORE]     STORE: "memory:" (default), "sqlite:PATH", ...

Needs the libwebhook package (pip install --no-build-isolation bindings/python)
and libwebhook.so.1 (installed, or LIBWEBHOOK_PATH=build/lib).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import libwebhook as wh

PERSON = {
    "marital_status": {"name": "Single adult", "id": "6120b81e-221c-11ea-978f-2e728ce88125"},
    "date_of_birth": "02/13/2023",
    "sex": {"name": "Male", "id": "b149d056-6a9f-46ee-afde-1aec972dbe9f"},
    "primary_language": {"name": "English", "id": "f045ef20-221a-11ea-978f-2e728ce88125"},
    "last_name": "Doe",
    "hispanic_or_latino": "no",
    "id": "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543",
    "first_name": "John",
    "highest_education_grade": {"name": "12", "id": "7772ff4a-221d-11ea-978f-2e728ce88125"},
}
TENANT = "be461bd7-2d91-41c6-ab29-4389066bcc71"


def start_receiver(secret_of: dict, tally: dict) -> ThreadingHTTPServer:
    """The receiving system: verifies each request with the secret it was given."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                wh.verify(secret_of["secret"], self.headers, body)
                verdict = "verified with the endpoint's secret"
                tally["verified"] += 1
            except wh.Error as e:
                verdict = f"REJECTED: {e}"
            tally["received"] += 1
            print(f"\n--- receiver: POST {self.path}, {len(body)} bytes")
            for name in ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "x-casebook-tenant"):
                print(f"{name + ':':19}{self.headers.get(name)}")
            print(f"{'body:':19}{body.decode()}")
            print(f"{'signature:':19}{verdict}")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    store = sys.argv[1] if len(sys.argv) > 1 else "memory:"
    secret_of: dict = {}
    tally = {"received": 0, "verified": 0}
    server = start_receiver(secret_of, tally)
    url = f"http://127.0.0.1:{server.server_address[1]}/casebook"

    with wh.Registry(store) as reg:
        # The admin screen: name, endpoint URL, description; people events only.
        ep = reg.add_endpoint("CRM people sync", url, description="Sends new and changed people to the CRM",
                              filters=["people.*"], headers={"X-Casebook-Tenant": TENANT})
        secret_of["secret"] = reg.secret(ep)  # shared with the receiver out of band
        print("endpoint:", json.dumps(reg.endpoint(ep)))

        # allow_private_networks: only because this receiver is on 127.0.0.1.
        with wh.Dispatcher(reg, workers=2, allow_private_networks=True) as d:
            d.start()
            msg = d.emit("people", "CREATE", PERSON, tenant_id=TENANT,
                         user_id="f9762deb-a115-412d-adf7-cf772807734a", resource_id=PERSON["id"])
            print("emitted:", msg)
            d.drain(timeout=10.0)
            for r in d.results(timeout=0.5):
                print(f"\nresult: {r.outcome}, attempt {r.attempt}, HTTP {r.http_status}, {r.duration_ms} ms")
            print("attempt log:", json.dumps(reg.message(msg), indent=2))
    server.shutdown()
    print(f"\n{tally['received']} received, {tally['verified']} signature verified")
    return 0 if tally["received"] == tally["verified"] == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
