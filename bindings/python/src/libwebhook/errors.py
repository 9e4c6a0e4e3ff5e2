"""Exceptions: one class per result code of the library, all under Error."""

from __future__ import annotations

from typing import Dict, NoReturn, Optional, Type

from . import constants as C
from ._native import lib


class Error(Exception):
    """A libwebhook call failed. .code is the WH_E* number, .detail what
    wh_error_last() said (or a message of the binding's own)."""

    CODE: Optional[int] = None

    def __init__(self, detail: str = "", code: Optional[int] = None) -> None:
        self.code: int = code if code is not None else (self.CODE or 0)
        self.detail: str = detail
        super().__init__(detail or f"libwebhook error {self.code}")


class InvalidArgument(Error, ValueError):
    CODE = C.EINVAL


class OutOfMemory(Error, MemoryError):
    CODE = C.ENOMEM


class NotFound(Error, LookupError):
    CODE = C.ENOTFOUND


class AlreadyExists(Error):
    CODE = C.EEXIST


class StateError(Error):
    CODE = C.ESTATE


class QueueFull(Error):
    CODE = C.EFULL


class StoreError(Error):
    CODE = C.ESTORE


class Timeout(Error, TimeoutError):
    CODE = C.ETIMEOUT


class SignatureError(Error):
    CODE = C.ESIGNATURE


class TimestampError(Error):
    CODE = C.ETIMESTAMP


class PolicyError(Error):
    CODE = C.EPOLICY


class RangeError(Error):
    CODE = C.ERANGE


BY_CODE: Dict[int, Type[Error]] = {
    cls.CODE: cls
    for cls in (
        InvalidArgument,
        OutOfMemory,
        NotFound,
        AlreadyExists,
        StateError,
        QueueFull,
        StoreError,
        Timeout,
        SignatureError,
        TimestampError,
        PolicyError,
        RangeError,
    )
    if cls.CODE is not None
}


def error_for(code: int, detail: Optional[str] = None) -> Error:
    """The exception for a result code. Without detail: wh_error_last() of this
    thread, which is where the failing call just wrote it."""
    if detail is None:
        raw = lib().wh_error_last()
        detail = raw.decode("utf-8", "replace") if raw else ""
        if not detail:
            text = lib().wh_strerror(code)
            detail = text.decode() if text else ""
    return BY_CODE.get(code, Error)(detail, code)


def check(rc: int) -> None:
    """Raise the exception of a non-zero result code."""
    if rc:
        raise error_for(rc)


def fail(code: int, detail: str) -> NoReturn:
    raise error_for(code, detail)
