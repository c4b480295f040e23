"""Conversions between Cassandra values, wire milliseconds and protobuf types."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from api.errors import invalid
from chat4all.clock import as_utc


def ts_from_ms(ms: int) -> Timestamp:
    """A protobuf Timestamp of ``ms`` milliseconds since the epoch."""
    out = Timestamp()
    out.FromMilliseconds(ms)
    return out


def ts_from_datetime(value: dt.datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None for a time that has not happened (field left unset)."""
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(as_utc(value))
    return out


def parse_uuid(value: str, field: str) -> uuid.UUID:
    """A UUID from a request field; INVALID_ARGUMENT naming the field if it is empty or malformed."""
    if not value:
        raise invalid(f"{field} is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(f"{field} is not a valid UUID: {value[:64]!r}") from None
