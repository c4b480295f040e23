"""Page sizes and page cursors: bounds, round trips, the cursor key, checked fields."""

from __future__ import annotations

import uuid

import grpc
import pytest

from api.errors import ApiError
from api.pagination import Cursors, cursor_key, cursor_ms, cursor_uuid, page_size
from api.tokens import MissingSecret
from chat4all.settings import Settings


def code_of(exc: pytest.ExceptionInfo) -> grpc.StatusCode:
    assert isinstance(exc.value, ApiError)
    return exc.value.code


def test_page_size_default_bounds_and_rejection() -> None:
    assert page_size(0) == 50
    assert page_size(1) == 1 and page_size(500) == 500
    for bad in (-1, 501, 10_000):
        with pytest.raises(ApiError) as exc:
            page_size(bad)
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_cursor_round_trip_and_kind_check() -> None:
    cursors = Cursors(key=b"k" * 32)
    token = cursors.encode("messages", {"ts": 1700000000123, "id": "abc"})
    assert cursors.decode("messages", token) == {"k": "messages", "ts": 1700000000123, "id": "abc"}
    assert cursors.decode("messages", "") is None
    other_key = Cursors(key=b"x" * 32).encode("messages", {"ts": 1, "id": "abc"})
    for bad_kind, bad_token in (
        ("conversations", token),
        ("messages", "%%%"),
        ("messages", "bm90LWpzb24"),
        ("messages", other_key),
        ("messages", token[:-2]),
        ("messages", token.split(".")[0]),
    ):
        with pytest.raises(ApiError) as exc:
            cursors.decode(bad_kind, bad_token)
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_cursor_key_is_derived_from_the_jwt_secret_unless_set() -> None:
    derived = cursor_key(settings=Settings(), jwt_secret="j" * 40)
    assert (
        derived
        == cursor_key(settings=Settings(), jwt_secret="j" * 40)
        != cursor_key(settings=Settings(), jwt_secret="i" * 40)
    )
    assert b"j" * 40 not in derived
    assert cursor_key(settings=Settings(api_cursor_secret="c" * 32), jwt_secret="j" * 40) == b"c" * 32
    with pytest.raises(MissingSecret):
        cursor_key(settings=Settings(api_cursor_secret="short"), jwt_secret="j" * 40)


def test_cursor_fields_are_type_and_range_checked() -> None:
    good = {"ts": 1700000000123, "id": str(uuid.uuid4())}
    assert cursor_ms(good, "ts") == 1700000000123 and str(cursor_uuid(good, "id")) == good["id"]
    for bad in ({"ts": 1e30}, {"ts": True}, {"ts": -1}, {"ts": 10**20}, {"ts": "1"}, {}, {"ts": [[1]]}):
        with pytest.raises(ApiError) as exc:
            cursor_ms(bad, "ts")
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
    for bad in ({"id": 7}, {"id": "nope"}, {"id": None}, {"id": "{" + good["id"] + "}"}, {}):
        with pytest.raises(ApiError) as exc:
            cursor_uuid(bad, "id")
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
