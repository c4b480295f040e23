"""The records that travel on Chat4All's topics: JSON, versioned, shared by API and workers.

Wire rules (docs/wire-format.md):
- JSON objects without faust metadata (``include_metadata=False``), so a plain
  aiokafka producer (the API) writes exactly what the agents read.
- ``v`` is the schema version of the record. Fields are only ever added, with a
  default; a worker that meets an unknown field keeps it and ignores it, so
  producers can be upgraded before consumers.
- Times are integer milliseconds since the epoch (``*_ms``); ids are UUID strings.
"""

from __future__ import annotations

import faust

SCHEMA_VERSION = 1


class _Wire(faust.Record, serializer="json", include_metadata=False, abstract=True):
    """Base of every record on the wire."""


class MessageEvent(_Wire):
    """A message accepted by the API. Topic ``messages``, key = conversation_id."""

    message_id: str
    conversation_id: str
    sender_id: str
    ts_ms: int
    content: str = ""
    file_id: str | None = None
    channels: list[str] = []  # channels SendMessage named; empty = every linked channel
    client_message_id: str | None = None
    v: int = SCHEMA_VERSION


class OutboundEvent(_Wire):
    """One message for one recipient on one channel. Topic ``<channel>-outbound``, key = message_id."""

    message_id: str
    conversation_id: str
    sender_id: str
    ts_ms: int
    recipient_id: str
    channel: str
    handle: str | None = None
    content: str = ""
    file_id: str | None = None
    receipt_keys: list[str] = []  # every '<recipient_id>:<channel>' of this message
    attempt: int = 0
    v: int = SCHEMA_VERSION


class StatusUpdate(_Wire):
    """A receipt change for one recipient and channel. Topic ``status-updates``, key = message_id.

    ``channel`` may be ``*`` (every channel of that recipient), as MarkRead does.
    Carries the message's full Cassandra primary key so no step reads before it writes.
    """

    message_id: str
    conversation_id: str
    ts_ms: int
    recipient_id: str
    channel: str
    status: str  # SENT | DELIVERED | READ | FAILED
    at_ms: int
    receipt_keys: list[str] = []
    reason: str | None = None
    source: str | None = None
    sender_id: str | None = None  # lets the tracker notify the sender without a lookup
    v: int = SCHEMA_VERSION


class Notification(_Wire):
    """A live event for clients. Topic ``notifications``, key = the user it is for."""

    user_id: str
    kind: str  # message.new | message.status
    message_id: str
    conversation_id: str
    at_ms: int
    status: str | None = None
    recipient_id: str | None = None
    channel: str | None = None
    sender_id: str | None = None
    content: str | None = None
    # For message.new: the message's timestamp and every receipt key, so that the realtime
    # gateway can publish the native DELIVERED receipt without reading Cassandra.
    ts_ms: int | None = None
    receipt_keys: list[str] = []
    v: int = SCHEMA_VERSION


class DeadLetter(_Wire):
    """A record given up on, with why. Topic ``dead-letters``, key = the original key."""

    topic: str
    key: str | None
    payload: str  # the original record, JSON text
    reason: str
    at_ms: int
    attempts: int = 0
    message_id: str | None = None
    conversation_id: str | None = None
    v: int = SCHEMA_VERSION
