"""A live event as the gateway hands it to clients, parsed from a `notifications` record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

MESSAGE_NEW = "message.new"
MESSAGE_STATUS = "message.status"


@dataclass(frozen=True, kw_only=True)
class LiveEvent:
    user_id: str  # who it is for
    kind: str  # message.new | message.status
    message_id: str
    conversation_id: str
    at_ms: int
    sender_id: str | None = None
    content: str | None = None
    status: str | None = None
    recipient_id: str | None = None
    channel: str | None = None
    ts_ms: int | None = None  # the message's timestamp (part of its Cassandra key)
    receipt_keys: tuple[str, ...] = ()  # every '<recipient>:<channel>' of the message

    def __post_init__(self) -> None:
        object.__setattr__(self, "receipt_keys", tuple(self.receipt_keys or ()))

    @classmethod
    def from_record(cls, raw: bytes) -> LiveEvent:
        """Parse a Notification (JSON, see streams/records.py); unknown fields are ignored."""
        data = json.loads(raw)
        known = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def to_json(self) -> str:
        """The WebSocket frame: the event's fields, without the ones that are not set."""
        hidden = {"user_id", "receipt_keys"}
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None and k not in hidden})
