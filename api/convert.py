"""Conversions between Cassandra values, wire milliseconds and protobuf types."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from api.errors import invalid
from chat4all.clock import now_ms

__all__ = ["now_ms"]  # the one wall-clock helper, re-exported for the API's modules


def ts_from_ms(ms: int) -> Timestamp:
    out = Timestamp()
    out.FromMilliseconds(ms)
    return out


def ts_from_datetime(value: dt.datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None for a time that has not happened (field left unset)."""
    if value is None:
        return None
    if value.tzinfo is None:  # the driver returns naive UTC datetimes
        value = value.replace(tzinfo=dt.UTC)
    out = Timestamp()
    out.FromDatetime(value)
    return out


def datetime_from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def ms_from_datetime(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def parse_uuid(value: str, field: str) -> uuid.UUID:
    """A UUID from a request field; INVALID_ARGUMENT naming the field if it is empty or malformed."""
    if not value:
        raise invalid(f"{field} is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(f"{field} is not a valid UUID: {value[:64]!r}") from None
