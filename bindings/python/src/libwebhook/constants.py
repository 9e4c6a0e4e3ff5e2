"""The numbers of include/webhook/webhook.h (tests/test_header.py checks each one
against the header, so they cannot drift)."""

from __future__ import annotations

from typing import Dict, Tuple

# Result codes (WH_OK, WH_E*).
OK = 0
EINVAL = 1
ENOMEM = 2
ENOTFOUND = 3
EEXIST = 4
ESTATE = 5
EFULL = 6
ESTORE = 7
ETIMEOUT = 8
ESIGNATURE = 9
ETIMESTAMP = 10
EPOLICY = 11
ERANGE = 12

# Delivery outcomes (wh_result_outcome) and their names in Result.outcome.
DELIVERED = 1
RETRYING = 2
FAILED = 3
OUTCOMES: Dict[int, str] = {DELIVERED: "delivered", RETRYING: "retrying", FAILED: "failed"}

# Log levels (wh_dispatcher_on_log).
LOG_ERROR = 1
LOG_WARN = 2
LOG_INFO = 3
LOG_DEBUG = 4

# Registry settings (wh_registry_set_int).
REG_TENANT_MAX_ENDPOINTS = 1

# Endpoint settings (wh_endpoint_set_int / wh_endpoint_set_str).
EP_ORDERED = 1
EP_RATE_LIMIT = 2
EP_TIMEOUT_MS = 3
EP_RETRY_SCHEDULE = 4
EP_PROXY = 5
EP_CLIENT_CERT = 6

# Any id the library returns fits in this many bytes, NUL included.
ID_MAX = 64

# Dispatcher options (wh_option): keyword of Dispatcher(...) -> (number, kind).
# kind "int" goes through wh_dispatcher_set_int, "bool" too (0/1), "str" through
# wh_dispatcher_set_str, "schedule" is a list of seconds or the text itself.
OPTIONS: Dict[str, Tuple[int, str]] = {
    "workers": (1, "int"),
    "max_in_flight": (2, "int"),
    "max_per_endpoint": (3, "int"),
    "timeout_ms": (4, "int"),
    "connect_timeout_ms": (5, "int"),
    "retry_schedule": (6, "schedule"),
    "allow_private_networks": (7, "bool"),
    "queue_limit": (8, "int"),
    "user_agent": (9, "str"),
    "ca_file": (10, "str"),
    "retry_jitter_pct": (11, "int"),
    "disable_after_ms": (12, "int"),
    "breaker_window_ms": (13, "int"),
    "breaker_min_requests": (14, "int"),
    "breaker_failure_pct": (15, "int"),
    "breaker_cooldown_ms": (16, "int"),
    "throttle_min_delay_ms": (17, "int"),
    "max_body_bytes": (18, "int"),
    "retention_days": (19, "int"),
    "lease_ms": (20, "int"),
    "process_default": (21, "bool"),
    "result_queue": (22, "int"),
    "proxy": (23, "str"),
}

# Endpoint settings by keyword of Registry.configure_endpoint(): (number, kind).
ENDPOINT_SETTINGS: Dict[str, Tuple[int, str]] = {
    "ordered": (EP_ORDERED, "bool"),
    "rate_limit": (EP_RATE_LIMIT, "int"),
    "timeout_ms": (EP_TIMEOUT_MS, "int"),
    "retry_schedule": (EP_RETRY_SCHEDULE, "schedule"),
    "proxy": (EP_PROXY, "str"),
    "client_cert": (EP_CLIENT_CERT, "str"),
}
