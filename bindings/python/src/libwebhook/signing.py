"""Standard Webhooks signing and verification, and checking incoming webhooks."""

from __future__ import annotations

import ctypes
import weakref
from datetime import datetime
from typing import Any, Mapping, Optional, Tuple, Union

from ._handle import Handle
from ._native import enc, lib
from .errors import InvalidArgument, check
from .timeutil import unix_seconds

Body = Union[bytes, bytearray, memoryview, str]


def _bytes(body: Body) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _header(headers: Mapping[str, Any], name: str) -> Optional[str]:
    """A header by name, compared case-insensitively (HTTP header names are)."""
    value = headers.get(name)
    if value is None:
        for key, v in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = v
                break
    if isinstance(value, (list, tuple)):  # some frameworks give every value of a header
        value = " ".join(str(v) for v in value)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return None if value is None else str(value)


def generate_secret() -> str:
    """A new secret: "whsec_" + base64 of 32 random bytes from the OS CSPRNG."""
    buf = ctypes.create_string_buffer(128)
    check(lib().wh_secret_generate(buf, len(buf)))
    return buf.value.decode()


def sign(secret: str, msg_id: str, timestamp: Union[int, datetime], body: Body) -> str:
    """The "v1,..." signature of (msg_id, timestamp, body) with secret."""
    data = _bytes(body)
    buf = ctypes.create_string_buffer(128)
    check(lib().wh_sign(enc(secret, "secret"), enc(msg_id, "msg_id"), unix_seconds(timestamp),
                        data, len(data), buf, len(buf)))
    return buf.value.decode()


def verify(secret: str, headers: Mapping[str, Any], body: Body, *, now: Union[int, datetime, None] = None) -> None:
    """Verify an incoming webhook: headers is any mapping (a dict, an
    http.client.HTTPMessage, a framework's headers) with webhook-id,
    webhook-timestamp and webhook-signature, in any letter case. Returns None;
    raises SignatureError, TimestampError (outside 5 minutes) or
    InvalidArgument (a header missing, a malformed secret)."""
    values = []
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        value = _header(headers, name)
        if value is None:
            raise InvalidArgument(f"verify: header {name} is missing")
        values.append(enc(str(value), name))
    data = _bytes(body)
    when = 0 if now is None else unix_seconds(now)
    check(lib().wh_verify(enc(secret, "secret"), values[0], values[1], values[2], data, len(data), when))


def _free_receiver(ptr: int) -> None:
    lib().wh_receiver_free(ptr)


class Receiver:
    """Checks incoming webhooks of several schemes ("standard", "github",
    "stripe", "slack"): signatures, timestamps and replays (ids seen before are
    kept in store: None/"memory:", "sqlite:PATH", "postgresql://...")."""

    def __init__(self, store: Optional[str] = None) -> None:
        out = ctypes.c_void_p()
        check(lib().wh_receiver_new(ctypes.byref(out), enc(store, "store")))
        self._h = Handle(out.value or 0, _free_receiver, "receiver")
        self._finalizer = weakref.finalize(self, self._h.close)

    def add_secret(self, scheme: str, secret: str) -> None:
        ptr = self._h.acquire()
        try:
            check(lib().wh_receiver_add_secret(ptr, enc(scheme, "scheme"), enc(secret, "secret")))
        finally:
            self._h.release()

    def check(self, headers: Mapping[str, Any], body: Body) -> str:
        """The request's id when authentic and new. Raises AlreadyExists for one
        seen before (a redelivery or replay), SignatureError, TimestampError,
        InvalidArgument (headers missing)."""
        items: Tuple[Tuple[str, str], ...] = tuple(
            (str(k), " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)) for k, v in headers.items()
        )
        names = (ctypes.c_char_p * max(len(items), 1))(*[enc(k, "header name") for k, _ in items])
        values = (ctypes.c_char_p * max(len(items), 1))(*[enc(v, "header value") for _, v in items])
        data = _bytes(body)
        buf = ctypes.create_string_buffer(1024)
        ptr = self._h.acquire()
        try:
            check(lib().wh_receiver_check(ptr, names, values, len(items), data, len(data), buf, len(buf)))
        finally:
            self._h.release()
        return buf.value.decode("utf-8", "replace")

    def close(self) -> None:
        self._finalizer.detach()
        self._h.close()

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
