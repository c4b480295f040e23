"""Decoding and validating raw topic values into records; a failure carries the reason for dead-letters."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import faust
import orjson

R = TypeVar("R", bound=faust.Record)


class InvalidRecord(ValueError):
    """A record that can never be processed (bad JSON, missing field, malformed id): dead-letter it."""


def decode(record_type: type[R], raw: bytes | str | None, *, uuid_fields: tuple[str, ...] = ()) -> R:
    """Parse JSON ``raw`` into ``record_type``; raise InvalidRecord saying why it is unusable."""
    if raw is None:
        raise InvalidRecord("empty value")
    try:
        data: Any = orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRecord(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRecord("not a JSON object")
    try:
        record = record_type.from_data(data)
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"not a {record_type.__name__}: {exc}") from exc
    for name in uuid_fields:
        value = getattr(record, name, None)
        try:
            uuid.UUID(str(value))
        except ValueError as exc:
            raise InvalidRecord(f"invalid {name}: {value!r}") from exc
    ts = getattr(record, "ts_ms", 0)
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise InvalidRecord(f"invalid ts_ms: {ts!r}")
    return record
