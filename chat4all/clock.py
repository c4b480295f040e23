"""The one time helper: wall-clock time as integer epoch milliseconds (the wire format) or aware UTC datetimes.

The Cassandra driver returns timestamps as naive datetimes that are UTC; `as_utc` and `to_ms` read them so.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import overload

# What agents are given to tell the time (tests pass a fake one).
Clock = Callable[[], int]


def now_ms() -> int:
    """Milliseconds since the epoch, now."""
    return int(time.time() * 1000)


def utc_now() -> dt.datetime:
    """Now as an aware UTC datetime, truncated to milliseconds as Cassandra stores timestamps (so compare-and-set matches)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@overload
def as_utc(value: None) -> None: ...


@overload
def as_utc(value: dt.datetime | int) -> dt.datetime: ...


def as_utc(value: dt.datetime | int | None) -> dt.datetime | None:
    """An aware UTC datetime from a datetime (naive means UTC) or epoch milliseconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


@overload
def to_ms(value: None) -> None: ...


@overload
def to_ms(value: dt.datetime | int) -> int: ...


def to_ms(value: dt.datetime | int | None) -> int | None:
    """Epoch milliseconds from a datetime (naive means UTC) or a number of milliseconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return int(as_utc(value).timestamp() * 1000)
    return int(value)
