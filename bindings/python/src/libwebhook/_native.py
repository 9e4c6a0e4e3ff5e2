"""Loading libwebhook.so.1 and declaring its functions for ctypes.

The table FUNCTIONS is the binding's copy of include/webhook/webhook.h: every
function with its return and argument types. tests/test_header.py parses the
header and checks this table against it (names, argument counts, types), so the
two cannot drift apart.

ctypes releases the GIL around every call, so a call that waits (drain, stop,
next_result) never holds up other Python threads. No callback is ever handed to
the library: results come from the result queue (wh_dispatcher_next_result).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import sysconfig
from ctypes import POINTER, c_char_p, c_int, c_int64, c_long, c_size_t, c_uint, c_void_p
from typing import Any, Callable, Dict, List, Optional, Tuple

_pp = POINTER(c_void_p)  # T **out: receives a handle, or text to release with wh_free
_strs = POINTER(c_char_p)  # const char *const *

# name: (return type, argument types). None as return type: void.
FUNCTIONS: Dict[str, Tuple[Any, List[Any]]] = {
    # version and errors
    "wh_version": (c_char_p, []),
    "wh_version_num": (c_uint, []),
    "wh_strerror": (c_char_p, [c_int]),
    "wh_error_last": (c_char_p, []),
    "wh_free": (None, [c_void_p]),
    # registry
    "wh_registry_open": (c_int, [_pp, c_char_p]),
    "wh_registry_free": (None, [c_void_p]),
    "wh_registry_open_tenant": (c_int, [_pp, c_void_p, c_char_p]),
    "wh_registry_tenant_id": (c_char_p, [c_void_p]),
    "wh_registry_set_int": (c_int, [c_void_p, c_int, c_long]),
    "wh_endpoint_add": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "wh_endpoint_remove": (c_int, [c_void_p, c_char_p]),
    "wh_endpoint_set_enabled": (c_int, [c_void_p, c_char_p, c_int]),
    "wh_endpoint_set_url": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wh_endpoint_set_name": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wh_endpoint_set_description": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wh_endpoint_subscribe": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wh_endpoint_unsubscribe": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wh_endpoint_set_header": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p]),
    "wh_endpoint_secret": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "wh_endpoint_rotate_secret": (c_int, [c_void_p, c_char_p, c_char_p, c_uint]),
    "wh_endpoint_signature": (
        c_int,
        [c_void_p, c_char_p, c_char_p, c_int64, c_char_p, c_size_t, c_char_p, c_size_t],
    ),
    "wh_endpoint_get_json": (c_int, [c_void_p, c_char_p, _pp]),
    "wh_endpoint_list_json": (c_int, [c_void_p, _pp]),
    # events
    "wh_event_new": (c_int, [_pp, c_char_p, c_char_p]),
    "wh_event_set_resource_json": (c_int, [c_void_p, c_char_p]),
    "wh_event_set_resource_id": (c_int, [c_void_p, c_char_p]),
    "wh_event_set_tenant_id": (c_int, [c_void_p, c_char_p]),
    "wh_event_set_user_id": (c_int, [c_void_p, c_char_p]),
    "wh_event_set_time": (c_int, [c_void_p, c_int64]),
    "wh_event_to_json": (c_int, [c_void_p, _pp]),
    "wh_event_free": (None, [c_void_p]),
    # dispatcher
    "wh_dispatcher_new": (c_int, [_pp, c_void_p]),
    "wh_dispatcher_set_int": (c_int, [c_void_p, c_int, c_long]),
    "wh_dispatcher_set_str": (c_int, [c_void_p, c_int, c_char_p]),
    "wh_dispatcher_start": (c_int, [c_void_p]),
    "wh_dispatcher_emit": (c_int, [c_void_p, c_void_p, c_char_p, c_size_t]),
    "wh_dispatcher_emit_batch": (c_int, [c_void_p, _pp, c_size_t, c_char_p, c_size_t]),
    "wh_emit": (c_int, [c_void_p]),
    "wh_dispatcher_set_default": (c_int, [c_void_p]),
    "wh_dispatcher_drain": (c_int, [c_void_p, c_int]),
    "wh_dispatcher_stop": (c_int, [c_void_p, c_int]),
    "wh_dispatcher_free": (None, [c_void_p]),
    # results
    "wh_result_message_id": (c_char_p, [c_void_p]),
    "wh_result_endpoint_id": (c_char_p, [c_void_p]),
    "wh_result_outcome": (c_int, [c_void_p]),
    "wh_result_attempt": (c_int, [c_void_p]),
    "wh_result_http_status": (c_int, [c_void_p]),
    "wh_result_error": (c_char_p, [c_void_p]),
    "wh_result_next_attempt_ms": (c_int64, [c_void_p]),
    "wh_result_duration_ms": (c_int64, [c_void_p]),
    "wh_result_endpoint_disabled": (c_int, [c_void_p]),
    # Declared for completeness; the binding never registers a callback.
    "wh_dispatcher_on_result": (c_int, [c_void_p, c_void_p, c_void_p]),
    "wh_dispatcher_on_disabled": (c_int, [c_void_p, c_void_p, c_void_p]),
    "wh_dispatcher_next_result": (c_int, [c_void_p, c_int, _pp]),
    "wh_result_free": (None, [c_void_p]),
    "wh_dispatcher_result_fd": (c_int, [c_void_p]),
    # attempt log, replay, retention
    "wh_message_get_json": (c_int, [c_void_p, c_char_p, _pp]),
    "wh_endpoint_failed_json": (c_int, [c_void_p, c_char_p, c_int64, c_size_t, _pp]),
    "wh_dispatcher_replay": (c_int, [c_void_p, c_char_p, c_char_p, POINTER(c_size_t)]),
    "wh_dispatcher_recover": (c_int, [c_void_p, c_char_p, c_int64, POINTER(c_size_t)]),
    "wh_registry_purge": (c_int, [c_void_p, c_int64, POINTER(c_size_t)]),
    "wh_message_replay": (c_int, [c_void_p, c_char_p, c_char_p, POINTER(c_size_t)]),
    "wh_endpoint_recover": (c_int, [c_void_p, c_char_p, c_int64, POINTER(c_size_t)]),
    "wh_endpoint_send_test": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    # stats, metrics, logs
    "wh_dispatcher_stats_json": (c_int, [c_void_p, _pp]),
    "wh_dispatcher_endpoint_stats_json": (c_int, [c_void_p, c_char_p, _pp]),
    "wh_dispatcher_metrics_text": (c_int, [c_void_p, _pp]),
    "wh_dispatcher_on_log": (c_int, [c_void_p, c_int, c_void_p, c_void_p]),
    # per-endpoint settings
    "wh_endpoint_set_int": (c_int, [c_void_p, c_char_p, c_int, c_long]),
    "wh_endpoint_set_str": (c_int, [c_void_p, c_char_p, c_int, c_char_p]),
    # incoming webhooks
    "wh_receiver_new": (c_int, [_pp, c_char_p]),
    "wh_receiver_free": (None, [c_void_p]),
    "wh_receiver_add_secret": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wh_receiver_check": (
        c_int,
        [c_void_p, _strs, _strs, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t],
    ),
    # admin API
    "wh_admin_handle": (
        c_int,
        [c_void_p, c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, POINTER(c_int), _pp],
    ),
    # signing and verification
    "wh_secret_generate": (c_int, [c_char_p, c_size_t]),
    "wh_sign": (c_int, [c_char_p, c_char_p, c_int64, c_char_p, c_size_t, c_char_p, c_size_t]),
    "wh_verify": (c_int, [c_char_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t, c_int64]),
}

SONAME = "libwebhook.so.1"


def _candidates() -> List[str]:
    """Where to look, in order: LIBWEBHOOK_PATH, the dynamic linker's search
    path (LD_LIBRARY_PATH, ld.so.cache), then the usual install prefixes."""
    env = os.environ.get("LIBWEBHOOK_PATH")
    if env:
        # A file, or a folder holding libwebhook.so.1 (a build tree's lib/, say).
        return [os.path.join(env, SONAME) if os.path.isdir(env) else env]
    found = [SONAME]
    name = ctypes.util.find_library("webhook")
    if name:
        found.append(name)
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for prefix in dict.fromkeys([sys.prefix, "/usr/local", "/usr"]):
        for libdir in ("lib", os.path.join("lib", multiarch) if multiarch else None, "lib64"):
            if libdir:
                found.append(os.path.join(prefix, libdir, SONAME))
    return found


def _missing(name: str, path: str, version: str) -> Callable[..., Any]:
    def call(*_args: Any) -> Any:
        raise OSError(f"{path}: libwebhook {version} has no {name}() (this binding needs 1.1)")

    return call


class Native:
    """The loaded library: one attribute per function of FUNCTIONS."""

    def __init__(self) -> None:
        tried = []
        lib: Optional[ctypes.CDLL] = None
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                tried.append(f"{path}: {e}")
        if lib is None:
            raise OSError(
                "libwebhook: cannot load libwebhook.so.1; install libwebhook (cmake --install), "
                "or set LIBWEBHOOK_PATH to the library file. Tried:\n  " + "\n  ".join(tried)
            )
        self.cdll = lib
        self.path = lib._name
        version = "?"
        for name, (restype, argtypes) in FUNCTIONS.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                setattr(self, name, _missing(name, self.path, version))
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)
            if name == "wh_version":
                version = fn().decode()

    def __getattr__(self, name: str) -> Any:  # for type checkers: every wh_* is a callable
        raise AttributeError(name)


_native: Optional[Native] = None


def lib() -> Native:
    """The library, loaded on first use (importing the package never fails)."""
    global _native
    if _native is None:
        _native = Native()
    return _native


def take_text(ptr: Optional[int]) -> str:
    """Decode text the library allocated for the caller and release it."""
    if not ptr:
        return ""
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib().wh_free(ptr)


def enc(s: Optional[str], what: str = "text") -> Optional[bytes]:
    """A str argument as the library takes it: UTF-8; None stays NULL. A NUL
    would cut the text short in C, so it is refused rather than truncated."""
    if s is None:
        return None
    if type(s) is str and "\x00" not in s:  # the common case, first
        return s.encode("utf-8")
    if not isinstance(s, str):
        from .errors import InvalidArgument

        raise InvalidArgument(f"{what}: expected str, got {type(s).__name__}")
    if "\x00" in s:
        from .errors import InvalidArgument

        raise InvalidArgument(f"{what}: contains a NUL character")
    return s.encode("utf-8")
