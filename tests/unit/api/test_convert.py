"""Ids read from requests: a bad one names its field."""

from __future__ import annotations

import uuid

import pytest

from api.convert import parse_uuid
from api.errors import ApiError


def test_parse_uuid_names_the_field() -> None:
    value = uuid.uuid4()
    assert parse_uuid(str(value), "x") == value
    with pytest.raises(ApiError, match="conversation_id is not a valid UUID"):
        parse_uuid("nope", "conversation_id")
    with pytest.raises(ApiError, match="file_id is required"):
        parse_uuid("", "file_id")
