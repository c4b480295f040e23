"""The records on Chat4All's topics: msgspec Structs, JSON, versioned, and their decoding rules.

Every producer and consumer (API, gateway, agents, connectors, CLI) uses this module; it
imports no faust. Rules (docs/wire-format.md):

- JSON objects, fields in declaration order, no metadata; keys are raw UTF-8 bytes.
- ``v`` is the record's schema version. Fields are only ever added, each with a default; a
  reader ignores fields it does not know, so producers can be upgraded before consumers.
- Times are integer milliseconds since the epoch (``*_ms``); ids are UUID strings.
- Statuses, channels and kinds travel as plain strings; the enums below name the ones this
  code writes. Fields stay typed ``str`` so that a record with a value this code does not
  know still decodes and its consumer decides (the status tracker dead-letters it).
"""

from __future__ import annotations

import enum
import re
import uuid
from typing import Any, TypeVar

import msgspec

SCHEMA_VERSION = 1


class Status(enum.StrEnum):
    """A receipt's status; forward order SENT -> DELIVERED -> READ, FAILED only after SENT."""

    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"


class Channel(enum.StrEnum):
    """The channels a message is delivered on (connectors/registry.py has a connector for each), and ``*``."""

    WHATSAPP = "whatsapp"
    INSTAGRAM = "instagram"
    NATIVE = "native"  # Chat4All's own clients: DELIVERED and READ come from them, not a simulator
    ALL = "*"  # in a StatusUpdate: every channel of that recipient (MarkRead)


# The channels with an outbound topic and a connector, in the order the platform lists them.
DELIVERY_CHANNELS: tuple[Channel, ...] = (Channel.WHATSAPP, Channel.INSTAGRAM, Channel.NATIVE)


class Kind(enum.StrEnum):
    """What a Notification tells its user."""

    MESSAGE_NEW = "message.new"  # a message for the user (native channel)
    MESSAGE_STATUS = "message.status"  # a receipt of the user's message changed


class _Wire(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every record on the wire (immutable; holds only strings, numbers and lists of strings)."""


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
    status: str  # a Status
    at_ms: int
    receipt_keys: list[str] = []
    reason: str | None = None
    source: str | None = None
    sender_id: str | None = None  # lets the tracker notify the sender without a lookup
    v: int = SCHEMA_VERSION


class Notification(_Wire, gc=True, weakref=True):
    """A live event for clients. Topic ``notifications``, key = the user it is for.

    Hashable and weak-referenceable: the gateway remembers which new messages no client was
    written yet (gateway/notifications.py).
    """

    user_id: str
    kind: str  # a Kind
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
    receipt_keys: tuple[str, ...] = ()
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


TICK_FIELD = "__tick__"


class Tick(_Wire):
    """Schedule punctuation on a simulated channel's ``<channel>-outbound`` partition, no key: fire what is due."""

    at_ms: int = msgspec.field(name=TICK_FIELD)


_TICK_MARK = TICK_FIELD.encode()

R = TypeVar("R", bound=_Wire)

_ENCODER = msgspec.json.Encoder()
_RECORD_TYPES: tuple[type[_Wire], ...] = (
    MessageEvent,
    OutboundEvent,
    StatusUpdate,
    Notification,
    DeadLetter,
    Tick,
)
_DECODERS: dict[type, msgspec.json.Decoder] = {t: msgspec.json.Decoder(t) for t in _RECORD_TYPES}
_JSON = msgspec.json.Decoder()
# ts_ms is a Cassandra timestamp (a signed 64-bit count of milliseconds).
_TS_MIN, _TS_MAX = -(2**63), 2**63 - 1
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class InvalidRecord(ValueError):
    """A record that can never be processed (bad JSON, missing field, malformed id): dead-letter it."""


def encode(record: _Wire) -> bytes:
    """The record's JSON: every field in declaration order, defaults included."""
    return _ENCODER.encode(record)


def is_tick(raw: bytes | None) -> bool:
    """Whether an outbound topic's value is a Tick (looked for in its first bytes, without parsing)."""
    return raw is not None and _TICK_MARK in raw[:32]


def decode(record_type: type[R], raw: bytes | str | None, *, uuid_fields: tuple[str, ...] = ()) -> R:
    """Parse JSON ``raw`` into ``record_type``; raise InvalidRecord saying why it is unusable.

    Reasons: ``empty value``, ``not JSON: ...``, ``not a JSON object``, ``not a <Type>: ...`` (a
    field missing or of the wrong JSON type), ``invalid <field>: ...`` (one of ``uuid_fields``
    that is no UUID), ``invalid ts_ms: ...`` (not an integer, a boolean, or beyond 64 bits).
    Unknown fields are ignored; ``null`` for a field with a non-null default reads as that default.
    """
    if raw is None:
        raise InvalidRecord("empty value")
    try:
        record = _DECODERS[record_type].decode(raw)
    except msgspec.ValidationError:
        # Valid JSON that does not fit the type: the slower path sorts out why, or reads what
        # the typed decoder cannot (null for a defaulted field).
        record = _decode_leniently(record_type, raw, uuid_fields)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRecord(f"not JSON: {exc}") from exc
    for name in uuid_fields:
        _check_uuid(name, getattr(record, name, None))
    ts = getattr(record, "ts_ms", None)
    if ts is not None and not _TS_MIN <= ts <= _TS_MAX:
        raise InvalidRecord(f"invalid ts_ms: {ts!r}")
    return record


def _decode_leniently(record_type: type[R], raw: bytes | str, uuid_fields: tuple[str, ...]) -> R:
    try:
        data: Any = _JSON.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # past where the typed decoder stopped
        raise InvalidRecord(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRecord("not a JSON object")
    type_name = record_type.__name__
    ts_required = False
    for field in msgspec.structs.fields(record_type):
        name = field.encode_name
        if field.required:
            ts_required = ts_required or name == "ts_ms"
            if name not in data:
                raise InvalidRecord(f"not a {type_name}: Object missing required field `{name}`")
        elif data.get(name, 0) is None and field.default is not None:
            # The records this module replaced (faust) read null as "take the default".
            del data[name]
    # The checks in the order the reasons have always been given: ids, then the timestamp.
    for name in uuid_fields:
        _check_uuid(name, data.get(name))
    ts = data.get("ts_ms")
    if ts_required and (not isinstance(ts, int) or isinstance(ts, bool)):
        raise InvalidRecord(f"invalid ts_ms: {ts!r}")
    try:
        return msgspec.convert(data, record_type)
    except msgspec.ValidationError as exc:
        raise InvalidRecord(f"not a {type_name}: {exc}") from exc


def _check_uuid(name: str, value: Any) -> None:
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return  # the form every producer writes; uuid.UUID below accepts the others it always did
    try:
        uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidRecord(f"invalid {name}: {value!r}") from exc
