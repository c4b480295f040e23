"""Page sizes and opaque page tokens: signed (HMAC-SHA256) cursors for the list RPCs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from typing import Any

from api.errors import invalid
from api.tokens import MissingSecret
from chat4all.settings import Settings

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MIN_KEY_BYTES = 32
# A message timestamp in a cursor: epoch milliseconds up to the end of year 9999 (what Python's
# datetime and Cassandra's timestamp both hold).
MAX_CURSOR_MS = 253_402_300_799_999
_MAC_BYTES = 32  # the whole HMAC-SHA256 digest
_DERIVE_LABEL = b"chat4all page-token key v1"
_MALFORMED = (
    "page_token is not one this server issued; pass the next_page_token of a previous response unchanged"
)


class WeakCursorKey(MissingSecret):
    """CHAT4ALL_API_CURSOR_SECRET is set but too short: the API must not start (`chat4all api` says why)."""


def page_size(requested: int) -> int:
    """The page size to use: 0 means the default; outside 1..500 is rejected, never clamped."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise invalid(
            f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 for the default {DEFAULT_PAGE_SIZE}), got {requested}"
        )
    return requested


def cursor_key(*, settings: Settings, jwt_secret: str) -> bytes:
    """The key that signs page tokens: CHAT4ALL_API_CURSOR_SECRET, else one derived from the JWT secret.

    Derived (HMAC-SHA256 of a fixed label under the JWT secret) rather than generated per process:
    every API process that accepts the others' tokens shares the JWT secret, so it also accepts the
    others' cursors, and a restart keeps outstanding cursors valid. The label separates the two
    uses: a cursor's MAC is never a token signature, and the derived key tells nothing of the secret.
    """
    if settings.api_cursor_secret is not None and settings.api_cursor_secret.get_secret_value():
        key = settings.api_cursor_secret.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise WeakCursorKey(
                f"CHAT4ALL_API_CURSOR_SECRET is shorter than {MIN_KEY_BYTES} bytes: refusing to start"
            )
        return key
    return hmac.new(jwt_secret.encode(), _DERIVE_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Issues page tokens and checks them: ``<payload>.<mac>``, both base64url, payload a JSON object.

    A token whose MAC does not match is refused before its payload is decoded, so a forged or
    altered token never reaches the JSON parser or a query; the fields of a genuine one are then
    checked by the list RPC that reads them (``messages_position``, ``conversations_position``).
    """

    def __init__(self, *, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, kind: str, cursor: dict[str, Any]) -> str:
        """A signed page token holding ``cursor`` for list RPC ``kind``."""
        payload = json.dumps({"k": kind, **cursor}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, kind: str, token: str) -> dict[str, Any] | None:
        """The cursor inside ``token``; None for an empty token; INVALID_ARGUMENT if it is not ours."""
        if not token:
            return None
        body, sep, mac = token.partition(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise invalid(_MALFORMED) from None
        if not sep or len(given) != _MAC_BYTES or not hmac.compare_digest(given, self._mac(payload)):
            raise invalid(_MALFORMED)
        try:
            cursor = json.loads(payload)
        # Signed by us, so never; but a key shared with a buggy writer must not be INTERNAL.
        except ValueError:
            raise invalid(_MALFORMED) from None
        if not isinstance(cursor, dict) or cursor.get("k") != kind:
            raise invalid(
                "page_token belongs to another call; pass the next_page_token of this call's previous response"
            )
        return cursor


def _field(cursor: dict[str, Any], name: str) -> Any:
    if name not in cursor:
        raise invalid(_MALFORMED)
    return cursor[name]


def cursor_uuid(cursor: dict[str, Any], name: str) -> uuid.UUID:
    """The UUID in field ``name`` of a decoded cursor; INVALID_ARGUMENT unless it is a UUID string."""
    value = _field(cursor, name)
    if not isinstance(value, str) or len(value) != 36:
        raise invalid(_MALFORMED)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(_MALFORMED) from None


def cursor_ms(cursor: dict[str, Any], name: str) -> int:
    """The epoch milliseconds in field ``name`` of a decoded cursor, within 0..MAX_CURSOR_MS."""
    value = _field(cursor, name)
    # bool is an int in Python; a float (1e30) is not a cursor we wrote.
    if type(value) is not int or not 0 <= value <= MAX_CURSOR_MS:
        raise invalid(_MALFORMED)
    return value
