"""The Python side of bench/bench_bindings.sh: the same emits as
bench_bindings_emit.c, through the Python binding (the dict resource serialised
by each emit, as an application would pass it).

    python bench_bindings.py URL EVENTS
"""

import sys
import time

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


def main() -> None:
    url, events = sys.argv[1], int(sys.argv[2])
    with wh.Registry() as reg:
        reg.add_endpoint("bench", url)
        with wh.Dispatcher(reg, allow_private_networks=True, timeout_ms=30000, queue_limit=100000000) as d:
            d.start()
            emit = d.emit
            start = time.perf_counter()
            for _ in range(events):
                emit("people", "CREATE", PERSON, tenant_id="be461bd7-2d91-41c6-ab29-4389066bcc71",
                     user_id="f9762deb-a115-412d-adf7-cf772807734a", resource_id=PERSON["id"])
            elapsed = time.perf_counter() - start
            print(f"python: {events} emits in {elapsed:.3f} s")
            print(f"RESULT emits_per_s {events / elapsed:.1f}")
            d.drain(timeout=120)


if __name__ == "__main__":
    main()
