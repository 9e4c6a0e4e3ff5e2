"""Dispatcher: delivery (wh_dispatcher_*), events, and results from the result queue."""

from __future__ import annotations

import asyncio
import ctypes
import json
import threading
import time as _time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Union, cast

from . import constants as C
from ._handle import Handle
from ._native import enc, lib, take_text
from .errors import InvalidArgument, StateError, Timeout, check, error_for
from .registry import Registry, schedule_text
from .timeutil import unix_micros, unix_ms

Resource = Union[Mapping[str, Any], str, bytes, None]

# Calls that wait do so in slices this long, so that Ctrl-C (a signal handler
# runs only between two calls) and close() from another thread get through.
SLICE_MS = 100
# Outcomes kept for results() / next_result_async() unless result_queue= says otherwise.
DEFAULT_RESULT_QUEUE = 10000


@dataclass(frozen=True)
class Event:
    """One Casebook event: "<resource_type>.<event_type>" with its resource (a
    dict, serialised compactly, or JSON text used as written) and ids."""

    resource_type: str
    event_type: str
    resource: Resource = None
    tenant_id: Optional[str] = None
    user_id: Optional[str] = None
    resource_id: Optional[str] = None
    time: Optional[datetime] = None

    def _build(self) -> int:
        """A wh_event for these fields; the caller owns it."""
        return _build_event(self.resource_type, self.event_type, self.resource, self.tenant_id,
                            self.user_id, self.resource_id, self.time)

    def to_json(self) -> str:
        """The envelope, exactly the bytes a delivery carries."""
        ev = self._build()
        try:
            out = ctypes.c_void_p()
            check(lib().wh_event_to_json(ev, ctypes.byref(out)))
            return take_text(out.value)
        finally:
            lib().wh_event_free(ev)


def _build_event(resource_type: str, event_type: str, resource: Resource, tenant_id: Optional[str],
                 user_id: Optional[str], resource_id: Optional[str], time: Optional[datetime]) -> int:
    """A wh_event from its parts; the caller owns it."""
    L = lib()
    out = ctypes.c_void_p()
    check(L.wh_event_new(ctypes.byref(out), enc(resource_type, "resource_type"), enc(event_type, "event_type")))
    ev = out.value or 0
    try:
        if resource is not None:
            check(L.wh_event_set_resource_json(ev, _resource_json(resource)))
        if tenant_id is not None:
            check(L.wh_event_set_tenant_id(ev, enc(tenant_id, "tenant_id")))
        if user_id is not None:
            check(L.wh_event_set_user_id(ev, enc(user_id, "user_id")))
        if resource_id is not None:
            check(L.wh_event_set_resource_id(ev, enc(resource_id, "resource_id")))
        if time is not None:
            check(L.wh_event_set_time(ev, unix_micros(time)))
    except BaseException:
        L.wh_event_free(ev)
        raise
    return ev


# Compact, UTF-8 as it is; one encoder for all (json.dumps with options builds one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _resource_json(resource: Resource) -> bytes:
    if isinstance(resource, Mapping):
        data = _ENCODER.encode(resource).encode("utf-8")
    elif isinstance(resource, bytes):
        data = resource
    elif isinstance(resource, str):
        data = resource.encode("utf-8")
    else:
        raise InvalidArgument(f"resource: a dict or JSON text, not {type(resource).__name__}")
    if b"\0" in data:
        raise InvalidArgument("resource: contains a NUL byte")
    return data


@dataclass(frozen=True)
class Result:
    """One attempt's outcome, taken from the result queue."""

    message_id: str
    endpoint_id: str
    outcome: str  # "delivered" | "retrying" | "failed"
    attempt: int  # 1 for the first try
    http_status: int  # 0 when no response arrived
    error: Optional[str]  # None on success
    next_attempt_at: Optional[datetime]  # for "retrying": when the next attempt is due
    duration_ms: int
    endpoint_disabled: bool  # this outcome disabled the endpoint (410, days of failure)


def _read_result(r: int) -> Result:
    L = lib()
    err = L.wh_result_error(r)
    next_ms = L.wh_result_next_attempt_ms(r)
    outcome = L.wh_result_outcome(r)
    return Result(
        message_id=(L.wh_result_message_id(r) or b"").decode(),
        endpoint_id=(L.wh_result_endpoint_id(r) or b"").decode(),
        outcome=C.OUTCOMES.get(outcome, str(outcome)),
        attempt=L.wh_result_attempt(r),
        http_status=L.wh_result_http_status(r),
        error=err.decode("utf-8", "replace") if err is not None else None,
        next_attempt_at=datetime.fromtimestamp(next_ms / 1000, timezone.utc) if next_ms else None,
        duration_ms=L.wh_result_duration_ms(r),
        endpoint_disabled=bool(L.wh_result_endpoint_disabled(r)),
    )


def _free_dispatcher(ptr: int) -> None:
    lib().wh_dispatcher_free(ptr)


def _stop_now(ptr: int) -> None:
    lib().wh_dispatcher_stop(ptr, 0)  # WH_ESTATE when it was not running: fine


def _close(handle: Handle) -> None:
    """At garbage collection or interpreter exit: stop without waiting."""
    handle.close(_stop_now)


class Dispatcher:
    """Delivers events to the endpoints of a registry with library worker threads.

    Options are keywords, one per WH_OPT_* (constants.OPTIONS): workers,
    max_in_flight, max_per_endpoint, timeout_ms, connect_timeout_ms,
    retry_schedule ([5, 300] or "5,300"), allow_private_networks,
    queue_limit, user_agent, ca_file, retry_jitter_pct, disable_after_ms,
    breaker_*, throttle_min_delay_ms, max_body_bytes, retention_days,
    lease_ms, process_default, result_queue (outcomes kept for results(),
    default 10000; 0 turns the queue off), proxy.

    A context manager: leaving the block closes it. close() is idempotent; an
    unclosed dispatcher is stopped (without waiting) and freed when it is
    garbage collected or at interpreter exit. emit() is safe from any thread.
    After os.fork(), in the child, every call raises StateError: make a new
    Registry and Dispatcher there.
    """

    def __init__(self, registry: Registry, **options: Any) -> None:
        if not isinstance(registry, Registry):
            raise InvalidArgument("Dispatcher: registry must be a libwebhook.Registry")
        options.setdefault("result_queue", DEFAULT_RESULT_QUEUE)
        out = ctypes.c_void_p()
        reg = registry._h.acquire()
        try:
            check(lib().wh_dispatcher_new(ctypes.byref(out), reg))
        finally:
            registry._h.release()
        self._h = Handle(out.value or 0, _free_dispatcher, "dispatcher")
        # No reference to the Registry object: the library keeps the registry
        # alive for the dispatcher, so the two can be dropped in any order.
        self._finalizer = weakref.finalize(self, _close, self._h)
        self._queue_size = int(options["result_queue"])
        self._waiters: Dict[asyncio.AbstractEventLoop, Set["asyncio.Future[None]"]] = {}
        self._waiters_lock = threading.Lock()
        try:
            for key, value in options.items():
                self._set_option(key, value)
        except BaseException:
            self.close()
            raise

    def _set_option(self, key: str, value: Any) -> None:
        if key not in C.OPTIONS:
            raise InvalidArgument(f"Dispatcher: unknown option {key!r}")
        number, kind = C.OPTIONS[key]
        if kind in ("int", "bool"):
            self._call("wh_dispatcher_set_int", number, int(value))
        else:
            text = schedule_text(value) if kind == "schedule" else value
            self._call("wh_dispatcher_set_str", number, enc(text, key))

    def _call(self, fn_name: str, *args: Any) -> int:
        """Call fn(d, *args); raise on failure, else return the result code."""
        ptr = self._h.acquire()
        try:
            rc = getattr(lib(), fn_name)(ptr, *args)
        finally:
            self._h.release()
        check(rc)
        return int(rc)

    # ---- lifecycle ----------------------------------------------------------
    def start(self) -> "Dispatcher":
        """Start the worker threads (deliveries pending in a durable store resume)."""
        self._call("wh_dispatcher_start")
        return self

    def drain(self, timeout: Optional[float] = None) -> None:
        """Wait until nothing is in flight or due now (scheduled retries may
        remain) and every finished attempt's outcome is in the result queue.
        timeout in seconds (None: no limit); raises Timeout. Ctrl-C interrupts it."""
        deadline = None if timeout is None else _time.monotonic() + timeout
        while True:
            left_ms = SLICE_MS if deadline is None else int((deadline - _time.monotonic()) * 1000)
            ptr = self._h.acquire()
            try:
                rc = lib().wh_dispatcher_drain(ptr, max(0, min(SLICE_MS, left_ms)))
            finally:
                self._h.release()
            if rc != C.ETIMEOUT:
                check(rc)
                return
            if deadline is not None and _time.monotonic() >= deadline:
                raise Timeout(f"drain: deliveries still in flight or due after {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking events; give requests in flight up to timeout seconds,
        then abort them (they stay pending) and raise Timeout."""
        self._call("wh_dispatcher_stop", _ms(timeout))

    def close(self, timeout: float = 5.0) -> None:
        """Stop (waiting up to timeout seconds for requests in flight) and free.
        Idempotent. Awaiting next_result_async() calls raise StateError."""
        self._finalizer.detach()
        self._cancel_waiters()
        def stop(ptr: int) -> None:
            lib().wh_dispatcher_stop(ptr, _ms(timeout))  # WH_ETIMEOUT: aborted, they stay pending

        self._h.close(stop)

    @property
    def closed(self) -> bool:
        return self._h.closed

    def __enter__(self) -> "Dispatcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_default(self) -> None:
        """Make this the process default dispatcher (of the C function wh_emit)."""
        self._call("wh_dispatcher_set_default")

    # ---- emitting -----------------------------------------------------------
    def emit(
        self,
        resource_type: str,
        event_type: str,
        resource: Resource = None,
        *,
        tenant_id: Optional[str] = None,
        user_id: Optional[str] = None,
        resource_id: Optional[str] = None,
        time: Optional[datetime] = None,
    ) -> str:
        """Fan an event out to the matching endpoints; returns the message id.
        Never waits for the network (with a durable store, for the commit)."""
        return self._emit(_build_event(resource_type, event_type, resource, tenant_id, user_id, resource_id, time))

    def emit_event(self, event: Event) -> str:
        """emit() of an Event."""
        return self._emit(event._build())

    def _emit(self, ev: int) -> str:
        """Emit a built wh_event (taken, also on failure)."""
        buf = ctypes.create_string_buffer(C.ID_MAX)
        try:
            ptr = self._h.acquire()
        except BaseException:
            lib().wh_event_free(ev)
            raise
        try:
            rc = lib().wh_dispatcher_emit(ptr, ev, buf, C.ID_MAX)  # takes ev, also on failure
        finally:
            self._h.release()
        check(rc)
        return buf.value.decode()

    def emit_batch(self, events: Sequence[Event]) -> List[str]:
        """Emit several events in one commit, all or nothing; their message ids."""
        L = lib()
        built: List[int] = []
        try:
            for event in events:
                built.append(event._build())
            ptr = self._h.acquire()
        except BaseException:
            for ev in built:
                L.wh_event_free(ev)
            raise
        n = len(built)
        array = (ctypes.c_void_p * max(n, 1))(*built)
        ids = ctypes.create_string_buffer(max(n, 1) * C.ID_MAX)
        try:
            rc = L.wh_dispatcher_emit_batch(ptr, ctypes.cast(array, ctypes.POINTER(ctypes.c_void_p)), n,
                                            ids, len(ids))
        finally:
            self._h.release()
        check(rc)
        raw = ids.raw
        return [raw[i * C.ID_MAX:(i + 1) * C.ID_MAX].split(b"\0", 1)[0].decode() for i in range(n)]

    # ---- results ------------------------------------------------------------
    def _take(self, timeout_ms: int) -> Optional[Result]:
        """One result from the queue within timeout_ms (<= a slice), or None."""
        L = lib()
        out = ctypes.c_void_p()
        ptr = self._h.acquire()
        try:
            rc = L.wh_dispatcher_next_result(ptr, timeout_ms, ctypes.byref(out))
        finally:
            self._h.release()
        if rc == C.ETIMEOUT:
            return None
        check(rc)
        try:
            return _read_result(out.value or 0)
        finally:
            L.wh_result_free(out.value)

    def next_result(self, timeout: Optional[float] = None) -> Optional[Result]:
        """The next outcome, waiting up to timeout seconds (None: no limit);
        None when none came. Raises StateError when the result queue is off,
        or when the dispatcher is stopped and nothing is left."""
        deadline = None if timeout is None else _time.monotonic() + timeout
        while True:
            left_ms = SLICE_MS if deadline is None else int((deadline - _time.monotonic()) * 1000)
            r = self._take(max(0, min(SLICE_MS, left_ms)))
            if r is not None or (deadline is not None and _time.monotonic() >= deadline):
                return r

    def results(self, timeout: Optional[float] = 1.0) -> Iterator[Result]:
        """Iterate over outcomes as they come, until timeout seconds pass with
        none (None: no limit), or the dispatcher is closed (also from inside the loop) or
        stopped with nothing left."""
        if self._queue_size <= 0:
            raise StateError("results: the result queue is off (result_queue=0)")
        while True:
            try:
                r = self.next_result(timeout)
            except StateError:
                return
            if r is None:
                return
            yield r

    @property
    def result_fd(self) -> int:
        """A descriptor readable while outcomes wait (for select/poll); -1 when off."""
        ptr = self._h.acquire()
        try:
            return int(lib().wh_dispatcher_result_fd(ptr))
        finally:
            self._h.release()

    async def next_result_async(self) -> Result:
        """Await the next outcome: the event loop watches the result fd, no
        thread waits. Raises StateError when the dispatcher is closed."""
        loop = asyncio.get_running_loop()
        while True:
            r = self._take(0)
            if r is not None:
                return r
            fut: "asyncio.Future[None]" = loop.create_future()
            self._add_waiter(loop, fut)
            try:
                await fut
            finally:
                self._remove_waiter(loop, fut)

    def _add_waiter(self, loop: asyncio.AbstractEventLoop, fut: "asyncio.Future[None]") -> None:
        fd = self.result_fd
        if fd < 0:
            raise StateError("next_result_async: the result queue is off (result_queue=0)")
        with self._waiters_lock:
            waiting = self._waiters.setdefault(loop, set())
            first = not waiting
            waiting.add(fut)
        if first:
            # One reader per loop wakes every waiter of that loop (add_reader
            # would replace an earlier reader of the same fd).
            loop.add_reader(fd, self._wake, loop, fd)

    def _wake(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        with self._waiters_lock:
            futs = self._waiters.pop(loop, set())
        loop.remove_reader(fd)
        for f in futs:
            if not f.done():
                f.set_result(None)

    def _remove_waiter(self, loop: asyncio.AbstractEventLoop, fut: "asyncio.Future[None]") -> None:
        with self._waiters_lock:
            waiting = self._waiters.get(loop)
            if waiting is None or fut not in waiting:
                return
            waiting.discard(fut)
            last = not waiting
            if last:
                del self._waiters[loop]
        if last and not self._h.closed:
            loop.remove_reader(self.result_fd)

    def _cancel_waiters(self) -> None:
        """Before the fd goes away with the dispatcher: unhook every loop's
        reader and fail its waiters, on that loop's own thread."""
        with self._waiters_lock:
            waiters, self._waiters = self._waiters, {}
        if not waiters:
            return
        fd = self.result_fd if not self._h.closed else -1

        def unhook(loop: asyncio.AbstractEventLoop, futs: Set["asyncio.Future[None]"], done: threading.Event) -> None:
            if fd >= 0:
                loop.remove_reader(fd)
            for f in futs:
                if not f.done():
                    f.set_exception(StateError("dispatcher closed"))
            done.set()

        for loop, futs in waiters.items():
            done = threading.Event()
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                unhook(loop, futs, done)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(unhook, loop, futs, done)
                done.wait(1.0)

    # ---- operations ---------------------------------------------------------
    def _json(self, fn_name: str, *args: Any) -> Any:
        out = ctypes.c_void_p()
        self._call(fn_name, *args, ctypes.byref(out))
        text = take_text(out.value)
        return text if fn_name == "wh_dispatcher_metrics_text" else json.loads(text)

    def stats(self) -> Dict[str, int]:
        """Totals since start (wh_dispatcher_stats_json)."""
        return cast(Dict[str, int], self._json("wh_dispatcher_stats_json"))

    def endpoint_stats(self, endpoint_id: str) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._json("wh_dispatcher_endpoint_stats_json", enc(endpoint_id, "endpoint_id")))

    def metrics(self) -> str:
        """Prometheus text exposition."""
        return cast(str, self._json("wh_dispatcher_metrics_text"))

    def replay(self, msg_id: str, endpoint_id: Optional[str] = None) -> int:
        n = ctypes.c_size_t()
        self._call("wh_dispatcher_replay", enc(msg_id, "msg_id"), enc(endpoint_id, "endpoint_id"),
                   ctypes.byref(n))
        return n.value

    def recover(self, endpoint_id: str, since: Union[datetime, int, None] = None) -> int:
        n = ctypes.c_size_t()
        self._call("wh_dispatcher_recover", enc(endpoint_id, "endpoint_id"), unix_ms(since), ctypes.byref(n))
        return n.value

    def __repr__(self) -> str:
        return f"<libwebhook.Dispatcher {'closed' if self.closed else 'open'}>"


def _ms(seconds: Optional[float]) -> int:
    return -1 if seconds is None else max(0, int(seconds * 1000))
