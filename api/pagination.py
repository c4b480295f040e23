"""Page sizes and opaque cursors (base64 JSON) for the list RPCs."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from api.errors import invalid

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    """The page size to use: 0 means the default; outside 1..500 is rejected, never clamped."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise invalid(f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 for the default {DEFAULT_PAGE_SIZE}), got {requested}")
    return requested


def encode_token(kind: str, cursor: dict[str, Any]) -> str:
    raw = json.dumps({"k": kind, **cursor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(kind: str, token: str) -> dict[str, Any] | None:
    """The cursor inside ``token``; None for an empty token; INVALID_ARGUMENT if it is not ours."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid("page_token is malformed; pass the next_page_token of a previous response") from None
    if not isinstance(cursor, dict) or cursor.get("k") != kind:
        raise invalid("page_token does not belong to this call")
    return cursor
