"""Outcomes from the result queue: the iterator, next_result, the fd and asyncio."""

from __future__ import annotations

import asyncio
import select
import threading
import time
import unittest

import libwebhook as wh

from support import Receiver


class ResultsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.rx = Receiver()
        self.addCleanup(self.rx.close)
        self.reg = wh.Registry()
        self.addCleanup(self.reg.close)
        self.ep = self.reg.add_endpoint("rx", self.rx.url)

    def dispatcher(self, **options: object) -> wh.Dispatcher:
        d = wh.Dispatcher(self.reg, allow_private_networks=True, **options)
        self.addCleanup(d.close)
        return d.start()

    def test_iterator_ends_after_timeout_with_none(self) -> None:
        d = self.dispatcher()
        t0 = time.monotonic()
        self.assertEqual(list(d.results(timeout=0.3)), [])
        self.assertLess(time.monotonic() - t0, 5.0)  # 0.3 s asked; a loaded machine may be slow
        self.assertIsNone(d.next_result(timeout=0.2))
        self.assertIsNone(d.next_result(timeout=0))

    def test_results_arrive_without_drain(self) -> None:
        d = self.dispatcher()
        ids = {d.emit("people", "CREATE", {"n": i}) for i in range(5)}
        got = {}
        for r in d.results(timeout=10.0):
            got[r.message_id] = r.outcome
            if len(got) == 5:
                break
        self.assertEqual(got, {i: "delivered" for i in ids})

    def test_queue_off(self) -> None:
        d = self.dispatcher(result_queue=0)
        self.assertEqual(d.result_fd, -1)
        with self.assertRaises(wh.StateError):
            list(d.results())
        with self.assertRaises(wh.StateError):
            d.next_result(timeout=0)

    def test_bounded_queue_keeps_the_newest(self) -> None:
        d = self.dispatcher(result_queue=2, workers=1, max_per_endpoint=1)
        ids = [d.emit("people", "CREATE", {"n": i}) for i in range(5)]
        d.drain(timeout=10.0)
        kept = [r.message_id for r in d.results(timeout=0.3)]
        self.assertEqual(len(kept), 2, kept)
        self.assertLessEqual(set(kept), set(ids))

    def test_result_fd_is_readable_while_results_wait(self) -> None:
        d = self.dispatcher()
        fd = d.result_fd
        self.assertGreaterEqual(fd, 0)
        self.assertEqual(select.select([fd], [], [], 0)[0], [])
        d.emit("people", "CREATE", {})
        self.assertEqual(select.select([fd], [], [], 10.0)[0], [fd])
        self.assertIsNotNone(d.next_result(timeout=0))
        self.assertEqual(select.select([fd], [], [], 0)[0], [])

    def test_next_result_async(self) -> None:
        d = self.dispatcher()

        async def main() -> list:
            # Two awaiters on one loop: both are woken, each gets its own result.
            waiting = [asyncio.ensure_future(d.next_result_async()) for _ in range(2)]
            await asyncio.sleep(0.05)
            ids = {d.emit("people", "CREATE", {"n": i}) for i in range(2)}
            got = await asyncio.wait_for(asyncio.gather(*waiting), 10.0)
            self.assertEqual({r.message_id for r in got}, ids)
            # A cancelled awaiter leaves no reader behind.
            t = asyncio.ensure_future(d.next_result_async())
            await asyncio.sleep(0.05)
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            msg = d.emit("people", "CREATE", {})
            r = await asyncio.wait_for(d.next_result_async(), 10.0)
            self.assertEqual(r.message_id, msg)
            return got

        asyncio.run(main())

    def test_close_wakes_async_awaiters(self) -> None:
        d = self.dispatcher()

        async def main() -> None:
            t = asyncio.ensure_future(d.next_result_async())
            await asyncio.sleep(0.05)
            d.close()
            with self.assertRaises(wh.StateError):
                await asyncio.wait_for(t, 5.0)

        asyncio.run(main())

    def test_close_from_another_thread_ends_a_blocked_iterator(self) -> None:
        d = self.dispatcher()
        seen: list = []
        t = threading.Thread(target=lambda: seen.extend(d.results(timeout=None)))  # type: ignore[arg-type]
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        d.close()
        t.join(5.0)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, 5.0)  # a slice of 0.1 s; a loaded machine may be slow


if __name__ == "__main__":
    unittest.main()
