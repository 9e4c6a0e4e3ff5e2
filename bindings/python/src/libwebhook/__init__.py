"""libwebhook for Python: send Standard Webhooks from Python through the C
library libwebhook.so.1 (ctypes; nothing to compile).

    import libwebhook as wh

    with wh.Registry("sqlite:webhooks.db") as reg:
        ep = reg.add_endpoint("CRM people sync", "https://crm.example.com/hooks", filters=["people.*"])
        with wh.Dispatcher(reg, workers=2) as d:
            d.start()
            d.emit("people", "CREATE", {"id": "p1"}, tenant_id="acme", resource_id="p1")
            d.drain(timeout=5.0)
            for r in d.results(timeout=1.0):
                print(r.outcome, r.http_status)

The library is found through LIBWEBHOOK_PATH (the file, or its folder), else
the dynamic linker's search path, else the usual install prefixes.
"""

from __future__ import annotations

from . import constants
from ._native import lib as _lib
from .constants import DELIVERED, FAILED, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN, RETRYING
from .dispatcher import Dispatcher, Event, Result
from .errors import (
    AlreadyExists,
    Error,
    InvalidArgument,
    NotFound,
    OutOfMemory,
    PolicyError,
    QueueFull,
    RangeError,
    SignatureError,
    StateError,
    StoreError,
    Timeout,
    TimestampError,
)
from .registry import Registry
from .signing import Receiver, generate_secret, sign, verify

__version__ = "1.1.0"


def library_version() -> str:
    """The version of the libwebhook.so actually loaded ("1.1.0")."""
    return str(_lib().wh_version().decode())


def library_path() -> str:
    """The file the library was loaded from."""
    return str(_lib().path)


__all__ = [
    "AlreadyExists",
    "DELIVERED",
    "Dispatcher",
    "Error",
    "Event",
    "FAILED",
    "InvalidArgument",
    "LOG_DEBUG",
    "LOG_ERROR",
    "LOG_INFO",
    "LOG_WARN",
    "NotFound",
    "OutOfMemory",
    "PolicyError",
    "QueueFull",
    "RETRYING",
    "RangeError",
    "Receiver",
    "Registry",
    "Result",
    "SignatureError",
    "StateError",
    "StoreError",
    "Timeout",
    "TimestampError",
    "constants",
    "generate_secret",
    "library_path",
    "library_version",
    "sign",
    "verify",
]
