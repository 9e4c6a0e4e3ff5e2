"""Registry: where endpoints live (wh_registry_*, wh_endpoint_*), and its tenant views."""

from __future__ import annotations

import ctypes
import json
import weakref
from datetime import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union, cast

from . import constants as C
from ._handle import Handle
from ._native import enc, lib, take_text
from .errors import InvalidArgument, check
from .timeutil import unix_ms

JSON = Dict[str, Any]


def _free_registry(ptr: int) -> None:
    lib().wh_registry_free(ptr)


def _close(handle: Handle) -> None:
    handle.close()


def schedule_text(value: Union[str, Iterable[float], None]) -> Optional[str]:
    """A retry schedule as the library takes it: "5,300,1800" from [5, 300, 1800]."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(format(float(v), "g") for v in value)


class Registry:
    """The set of endpoints an administrator registered.

    Registry() or Registry("memory:") keeps them in this process,
    Registry("sqlite:PATH") in a file, Registry("postgresql://...") in a
    database shared with other processes. Use it as a context manager, or call
    close(); an unclosed registry is freed when it is garbage collected or at
    interpreter exit. Any order of freeing registries, views and dispatchers
    is safe (the library keeps a registry alive while something uses it).
    Every method is safe from any number of threads at once.
    """

    def __init__(self, store: Optional[str] = None) -> None:
        out = ctypes.c_void_p()
        check(lib().wh_registry_open(ctypes.byref(out), enc(store, "store")))
        self._init(out.value or 0, "registry")

    def _init(self, ptr: int, what: str) -> None:
        self._h = Handle(ptr, _free_registry, what)
        self._finalizer = weakref.finalize(self, _close, self._h)

    # ---- lifecycle ----------------------------------------------------------
    def close(self) -> None:
        """Release the registry (idempotent). Dispatchers and views made from it
        keep working: the library frees it after the last of them."""
        self._h.close()
        self._finalizer.detach()

    @property
    def closed(self) -> bool:
        return self._h.closed

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, fn_name: str, *args: Any) -> None:
        ptr = self._h.acquire()
        try:
            check(getattr(lib(), fn_name)(ptr, *args))
        finally:
            self._h.release()

    def _json(self, fn_name: str, *args: Any) -> Any:
        out = ctypes.c_void_p()
        self._call(fn_name, *args, ctypes.byref(out))
        return json.loads(take_text(out.value))

    def _count(self, fn_name: str, *args: Any) -> int:
        n = ctypes.c_size_t()
        self._call(fn_name, *args, ctypes.byref(n))
        return n.value

    # ---- tenants ------------------------------------------------------------
    def tenant(self, tenant_id: str) -> "Registry":
        """A view limited to one tenant: the same methods, seeing only that
        tenant's endpoints and messages; endpoints added through it belong to
        the tenant. Close it like a registry (it keeps this one alive)."""
        out = ctypes.c_void_p()
        name = enc(tenant_id, "tenant_id")
        ptr = self._h.acquire()
        try:  # the view comes first here: wh_registry_open_tenant(&view, reg, id)
            check(lib().wh_registry_open_tenant(ctypes.byref(out), ptr, name))
        finally:
            self._h.release()
        view = Registry.__new__(Registry)
        view._init(out.value or 0, f"tenant view {tenant_id!r}")
        return view

    @property
    def tenant_id(self) -> Optional[str]:
        """The tenant of a view; None for the root registry."""
        ptr = self._h.acquire()
        try:
            raw = lib().wh_registry_tenant_id(ptr)
        finally:
            self._h.release()
        return raw.decode("utf-8") if raw is not None else None

    def set_tenant_max_endpoints(self, n: int) -> None:
        """Most endpoints one tenant may have (0: no limit). Root registry only."""
        self._call("wh_registry_set_int", C.REG_TENANT_MAX_ENDPOINTS, n)

    # ---- endpoints ----------------------------------------------------------
    def add_endpoint(
        self,
        name: str,
        url: str,
        description: Optional[str] = None,
        *,
        filters: Optional[Iterable[str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> str:
        """Register an endpoint, enabled, with a fresh secret; returns its id.
        filters: patterns such as "people.*" (none: every event); headers: sent
        with every request. All or nothing: if a filter or header is refused,
        the endpoint is removed again and the error raised."""
        buf = ctypes.create_string_buffer(C.ID_MAX)
        self._call(
            "wh_endpoint_add",
            enc(name, "name"),
            enc(url, "url"),
            enc(description, "description"),
            buf,
            C.ID_MAX,
        )
        ep_id = buf.value.decode()
        try:
            for pattern in filters or ():
                self.subscribe(ep_id, pattern)
            for key, value in (headers or {}).items():
                self.set_header(ep_id, key, value)
        except BaseException:
            self.remove_endpoint(ep_id)
            raise
        return ep_id

    def endpoint(self, endpoint_id: str) -> JSON:
        """The endpoint as a dict (wh_endpoint_get_json): id, name, url,
        description, enabled, filters, headers, created_at, disabled_reason,
        tenant_id, settings."""
        return cast(JSON, self._json("wh_endpoint_get_json", enc(endpoint_id, "endpoint_id")))

    def endpoints(self) -> List[JSON]:
        """Every endpoint (of the tenant, on a view), in the order added."""
        return cast(List[JSON], self._json("wh_endpoint_list_json"))

    def remove_endpoint(self, endpoint_id: str) -> None:
        self._call("wh_endpoint_remove", enc(endpoint_id, "endpoint_id"))

    def set_enabled(self, endpoint_id: str, enabled: bool) -> None:
        self._call("wh_endpoint_set_enabled", enc(endpoint_id, "endpoint_id"), 1 if enabled else 0)

    def set_url(self, endpoint_id: str, url: str) -> None:
        self._call("wh_endpoint_set_url", enc(endpoint_id, "endpoint_id"), enc(url, "url"))

    def set_name(self, endpoint_id: str, name: str) -> None:
        self._call("wh_endpoint_set_name", enc(endpoint_id, "endpoint_id"), enc(name, "name"))

    def set_description(self, endpoint_id: str, description: Optional[str]) -> None:
        self._call(
            "wh_endpoint_set_description",
            enc(endpoint_id, "endpoint_id"),
            enc(description, "description"),
        )

    def subscribe(self, endpoint_id: str, pattern: str) -> None:
        self._call("wh_endpoint_subscribe", enc(endpoint_id, "endpoint_id"), enc(pattern, "pattern"))

    def unsubscribe(self, endpoint_id: str, pattern: str) -> None:
        self._call("wh_endpoint_unsubscribe", enc(endpoint_id, "endpoint_id"), enc(pattern, "pattern"))

    def set_header(self, endpoint_id: str, name: str, value: Optional[str]) -> None:
        """Set (value None: remove) a header sent with every request."""
        self._call(
            "wh_endpoint_set_header",
            enc(endpoint_id, "endpoint_id"),
            enc(name, "header name"),
            enc(value, "header value"),
        )

    def secret(self, endpoint_id: str) -> str:
        """The endpoint's current signing secret ("whsec_...")."""
        buf = ctypes.create_string_buffer(128)
        self._call("wh_endpoint_secret", enc(endpoint_id, "endpoint_id"), buf, len(buf))
        return buf.value.decode()

    def rotate_secret(
        self, endpoint_id: str, new_secret: Optional[str] = None, grace_seconds: int = 0
    ) -> None:
        """New signing secret (None: generated); the old one keeps signing
        alongside it for grace_seconds."""
        self._call(
            "wh_endpoint_rotate_secret",
            enc(endpoint_id, "endpoint_id"),
            enc(new_secret, "secret"),
            grace_seconds,
        )

    def signature(self, endpoint_id: str, msg_id: str, timestamp: int, body: Union[bytes, str]) -> str:
        """The webhook-signature header this endpoint's deliveries carry."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        buf = ctypes.create_string_buffer(1024)
        self._call(
            "wh_endpoint_signature",
            enc(endpoint_id, "endpoint_id"),
            enc(msg_id, "msg_id"),
            int(timestamp),
            data,
            len(data),
            buf,
            len(buf),
        )
        return buf.value.decode()

    def configure_endpoint(self, endpoint_id: str, **settings: Any) -> None:
        """Per-endpoint delivery settings: ordered (bool), rate_limit (per
        second), timeout_ms, retry_schedule (list of seconds, or None for the
        default), proxy, client_cert (PEM file); None clears a text setting."""
        eid = enc(endpoint_id, "endpoint_id")
        for key, value in settings.items():
            if key not in C.ENDPOINT_SETTINGS:
                raise InvalidArgument(f"configure_endpoint: unknown setting {key!r}")
            number, kind = C.ENDPOINT_SETTINGS[key]
            if kind in ("int", "bool"):
                self._call("wh_endpoint_set_int", eid, number, int(value))
            else:
                text = schedule_text(value) if kind == "schedule" else value
                self._call("wh_endpoint_set_str", eid, number, enc(text, key))

    # ---- the attempt log and admin actions ----------------------------------
    def message(self, msg_id: str) -> JSON:
        """A message and its deliveries with every attempt (wh_message_get_json)."""
        return cast(JSON, self._json("wh_message_get_json", enc(msg_id, "msg_id")))

    def failed(self, endpoint_id: str, since: Union[datetime, int, None] = None, limit: int = 0) -> List[JSON]:
        """The endpoint's failed deliveries finished at or after since."""
        return cast(List[JSON], self._json(
            "wh_endpoint_failed_json", enc(endpoint_id, "endpoint_id"), unix_ms(since), limit
        ))

    def replay(self, msg_id: str, endpoint_id: Optional[str] = None) -> int:
        """Send a message again (to one endpoint, or to all it went to); returns
        how many deliveries were queued."""
        return self._count("wh_message_replay", enc(msg_id, "msg_id"), enc(endpoint_id, "endpoint_id"))

    def recover(self, endpoint_id: str, since: Union[datetime, int, None] = None) -> int:
        """Queue again the endpoint's failed deliveries since then."""
        return self._count("wh_endpoint_recover", enc(endpoint_id, "endpoint_id"), unix_ms(since))

    def send_test(self, endpoint_id: str) -> str:
        """Send a "webhook.TEST" message to this endpoint only; its id."""
        buf = ctypes.create_string_buffer(C.ID_MAX)
        self._call("wh_endpoint_send_test", enc(endpoint_id, "endpoint_id"), buf, C.ID_MAX)
        return buf.value.decode()

    def purge(self, before: Union[datetime, int]) -> int:
        """Purge messages delivered before then (root registry only)."""
        return self._count("wh_registry_purge", unix_ms(before))

    def admin(
        self,
        method: str,
        path: str,
        body: Union[bytes, str, Mapping[str, Any], None] = None,
        dispatcher: Any = None,
    ) -> "tuple[int, Any]":
        """Answer one request of the admin REST API: (HTTP status, decoded JSON)."""
        if isinstance(body, Mapping):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = bytes(body or b"")
        status = ctypes.c_int()
        out = ctypes.c_void_p()
        dptr = dispatcher._h.acquire() if dispatcher is not None else None
        try:
            self._call(
                "wh_admin_handle",
                dptr,
                enc(method, "method"),
                enc(path, "path"),
                data,
                len(data),
                ctypes.byref(status),
                ctypes.byref(out),
            )
        finally:
            if dispatcher is not None:
                dispatcher._h.release()
        text = take_text(out.value)
        return status.value, (json.loads(text) if text else None)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        tenant = f" tenant={self.tenant_id!r}" if not self.closed and self.tenant_id else ""
        return f"<libwebhook.Registry{tenant} {state}>"
