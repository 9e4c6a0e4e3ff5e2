"""Times as the library takes them: integers since 1970-01-01T00:00:00Z."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Union

from .errors import InvalidArgument

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _since_epoch(value: datetime, what: str) -> timedelta:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive datetime is local time to datetime.timestamp() but UTC to
        # utcnow(): refuse to guess.
        raise InvalidArgument(f"{what}: a timezone-aware datetime, such as datetime.now(timezone.utc)")
    return value - _EPOCH


def unix_micros(value: datetime, what: str = "time") -> int:
    """Exact microseconds (no float rounding)."""
    return _since_epoch(value, what) // timedelta(microseconds=1)


def unix_ms(value: Union[datetime, int, float, None], what: str = "time") -> int:
    """A datetime, or unix milliseconds as they are; None is 0 (the beginning)."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return _since_epoch(value, what) // timedelta(milliseconds=1)
    return int(value)


def unix_seconds(value: Union[datetime, int, float], what: str = "timestamp") -> int:
    """A datetime or unix seconds, floored to whole seconds."""
    if isinstance(value, datetime):
        return _since_epoch(value, what) // timedelta(seconds=1)
    return int(value)
