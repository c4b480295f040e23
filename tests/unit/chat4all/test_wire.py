"""The wire module: byte-compatible encoding, round trips, old shapes, the decode contract and the enums."""

from __future__ import annotations

import json
import weakref

import msgspec
import pytest

from chat4all.wire import (
    DELIVERY_CHANNELS,
    SCHEMA_VERSION,
    Channel,
    DeadLetter,
    InvalidRecord,
    Kind,
    MessageEvent,
    Notification,
    OutboundEvent,
    Status,
    StatusUpdate,
    Tick,
    decode,
    encode,
    is_tick,
)
from connectors.registry import CONNECTORS

M, C = "01a230ea-0971-78b2-96e4-3c18fa44b000", "01a230e8-0167-7ec2-ae1f-f4e95ea82de0"
S, R = "6f1c2a4e-0000-4000-8000-00000000000a", "6f1c2a4e-0000-4000-8000-00000000000b"
TS = 1796116973937
IDS = {"M": M, "C": C, "S": S, "R": R, "TS": TS}
STATUS_IDS = ("message_id", "conversation_id", "recipient_id")

# Each record with every field set and with only the required ones, and the exact bytes the faust
# records this module replaced wrote for it (Record.dumps(), orjson): what is on the topics today.
FULL = [
    (
        MessageEvent(
            message_id=M,
            conversation_id=C,
            sender_id=S,
            ts_ms=TS,
            content='olá ✓ "q" \\ \n \u2028 😀 \x00',
            file_id=R,
            channels=["whatsapp", "native"],
            client_message_id="cm-1",
        ),
        '{{"message_id":"{M}","conversation_id":"{C}","sender_id":"{S}","ts_ms":{TS},'
        '"content":"olá ✓ \\"q\\" \\\\ \\n \u2028 😀 \\u0000","file_id":"{R}","channels":["whatsapp","native"],'
        '"client_message_id":"cm-1","v":1}}',
    ),
    (
        OutboundEvent(
            message_id=M,
            conversation_id=C,
            sender_id=S,
            ts_ms=TS,
            recipient_id=R,
            channel="whatsapp",
            handle="+5511",
            content="hi",
            receipt_keys=[f"{R}:whatsapp", f"{R}:native"],
            attempt=2,
        ),
        '{{"message_id":"{M}","conversation_id":"{C}","sender_id":"{S}","ts_ms":{TS},"recipient_id":"{R}",'
        '"channel":"whatsapp","handle":"+5511","content":"hi","file_id":null,"receipt_keys":["{R}:whatsapp","{R}:native"],'
        '"attempt":2,"v":1}}',
    ),
    (
        StatusUpdate(
            message_id=M,
            conversation_id=C,
            ts_ms=TS,
            recipient_id=R,
            channel=Channel.ALL,
            status=Status.READ,
            at_ms=TS + 5,
            receipt_keys=[f"{R}:native"],
            reason="r",
            source="api.mark_read",
            sender_id=S,
        ),
        '{{"message_id":"{M}","conversation_id":"{C}","ts_ms":{TS},"recipient_id":"{R}","channel":"*","status":"READ",'
        '"at_ms":1796116973942,"receipt_keys":["{R}:native"],"reason":"r","source":"api.mark_read","sender_id":"{S}",'
        '"v":1}}',
    ),
    (
        Notification(
            user_id=R,
            kind=Kind.MESSAGE_NEW,
            message_id=M,
            conversation_id=C,
            at_ms=TS + 1,
            status=Status.DELIVERED,
            recipient_id=R,
            channel=Channel.NATIVE,
            sender_id=S,
            content="hi",
            ts_ms=TS,
            receipt_keys=(f"{R}:native",),
        ),
        '{{"user_id":"{R}","kind":"message.new","message_id":"{M}","conversation_id":"{C}","at_ms":1796116973938,'
        '"status":"DELIVERED","recipient_id":"{R}","channel":"native","sender_id":"{S}","content":"hi","ts_ms":{TS},'
        '"receipt_keys":["{R}:native"],"v":1}}',
    ),
    (
        DeadLetter(
            topic="messages",
            key=C,
            payload='{"x":1}',
            reason="conversation not found",
            at_ms=TS,
            attempts=3,
            message_id=M,
            conversation_id=C,
        ),
        '{{"topic":"messages","key":"{C}","payload":"{{\\"x\\":1}}","reason":"conversation not found","at_ms":{TS},'
        '"attempts":3,"message_id":"{M}","conversation_id":"{C}","v":1}}',
    ),
]
MINIMAL = [
    (
        MessageEvent(message_id=M, conversation_id=C, sender_id=S, ts_ms=TS),
        '{{"message_id":"{M}","conversation_id":"{C}","sender_id":"{S}","ts_ms":{TS},"content":"","file_id":null,'
        '"channels":[],"client_message_id":null,"v":1}}',
    ),
    (
        OutboundEvent(
            message_id=M, conversation_id=C, sender_id=S, ts_ms=TS, recipient_id=R, channel="native"
        ),
        '{{"message_id":"{M}","conversation_id":"{C}","sender_id":"{S}","ts_ms":{TS},"recipient_id":"{R}",'
        '"channel":"native","handle":null,"content":"","file_id":null,"receipt_keys":[],"attempt":0,"v":1}}',
    ),
    (
        StatusUpdate(
            message_id=M,
            conversation_id=C,
            ts_ms=TS,
            recipient_id=R,
            channel="native",
            status="DELIVERED",
            at_ms=TS,
        ),
        '{{"message_id":"{M}","conversation_id":"{C}","ts_ms":{TS},"recipient_id":"{R}","channel":"native",'
        '"status":"DELIVERED","at_ms":{TS},"receipt_keys":[],"reason":null,"source":null,"sender_id":null,"v":1}}',
    ),
    (
        Notification(user_id=R, kind="message.status", message_id=M, conversation_id=C, at_ms=TS),
        '{{"user_id":"{R}","kind":"message.status","message_id":"{M}","conversation_id":"{C}","at_ms":{TS},'
        '"status":null,"recipient_id":null,"channel":null,"sender_id":null,"content":null,"ts_ms":null,'
        '"receipt_keys":[],"v":1}}',
    ),
    (
        DeadLetter(topic="t", key=None, payload="", reason="r", at_ms=TS),
        '{{"topic":"t","key":null,"payload":"","reason":"r","at_ms":{TS},"attempts":0,"message_id":null,'
        '"conversation_id":null,"v":1}}',
    ),
]
CASES = FULL + MINIMAL
NAMES = [f"{type(r).__name__}-{'full' if i < len(FULL) else 'minimal'}" for i, (r, _) in enumerate(CASES)]
# The required fields of schema version 1: every field added later must have a default.
V1_REQUIRED = {
    MessageEvent: ["message_id", "conversation_id", "sender_id", "ts_ms"],
    OutboundEvent: ["message_id", "conversation_id", "sender_id", "ts_ms", "recipient_id", "channel"],
    StatusUpdate: ["message_id", "conversation_id", "ts_ms", "recipient_id", "channel", "status", "at_ms"],
    Notification: ["user_id", "kind", "message_id", "conversation_id", "at_ms"],
    DeadLetter: ["topic", "key", "payload", "reason", "at_ms"],
}


def _status(**fields: object) -> bytes:
    body = {
        "message_id": M,
        "conversation_id": C,
        "ts_ms": TS,
        "recipient_id": R,
        "channel": "native",
        "status": "READ",
        "at_ms": TS + 1,
        **fields,
    }
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


@pytest.mark.parametrize(("record", "golden"), CASES, ids=NAMES)
def test_encoding_is_the_bytes_todays_topics_carry_and_decodes_back(record, golden) -> None:
    raw = golden.format(**IDS).encode()
    assert encode(record) == raw
    # Every field, in declaration order, and nothing else (no metadata).
    assert list(json.loads(raw)) == [f.encode_name for f in msgspec.structs.fields(type(record))]
    assert decode(type(record), raw) == record
    assert decode(type(record), raw.decode()) == record  # str values too


@pytest.mark.parametrize(
    ("record_type", "required"), V1_REQUIRED.items(), ids=lambda x: getattr(x, "__name__", "")
)
def test_fields_are_added_only_with_a_default_and_v_is_the_schema_version(record_type, required) -> None:
    fields = msgspec.structs.fields(record_type)
    assert [f.name for f in fields if f.required] == required
    assert fields[-1].name == "v" and fields[-1].default == SCHEMA_VERSION == 1


def test_the_shapes_older_writers_left_decode_with_their_defaults() -> None:
    # Defaulted fields left out (the test producers, a plain producer), and null for a field
    # with a non-null default, which the faust records read as the default.
    minimal = {"message_id": M, "conversation_id": C, "sender_id": S, "ts_ms": TS}
    expected = MessageEvent(message_id=M, conversation_id=C, sender_id=S, ts_ms=TS)
    assert decode(MessageEvent, json.dumps(minimal).encode()) == expected
    nulls = {
        **minimal,
        "content": None,
        "file_id": None,
        "channels": None,
        "client_message_id": None,
        "v": None,
    }
    assert decode(MessageEvent, json.dumps(nulls).encode()) == expected
    update = decode(
        StatusUpdate, _status(receipt_keys=None, reason=None, sender_id=None), uuid_fields=STATUS_IDS
    )
    assert update.receipt_keys == [] and update.reason is None and update.v == 1
    note = decode(
        Notification,
        b'{"user_id":"u","kind":"message.new","message_id":"m","conversation_id":"c",'
        b'"at_ms":1,"receipt_keys":null,"ts_ms":null}',
    )
    assert note.receipt_keys == () and note.ts_ms is None


def test_unknown_fields_are_ignored_so_producers_can_be_upgraded_first() -> None:
    newer = _status(v=2, priority="high", nested={"a": [1, 2]})
    update = decode(StatusUpdate, newer, uuid_fields=STATUS_IDS)
    assert update.status == "READ" and update.v == 2
    assert "priority" not in encode(update).decode()
    # Also on the lenient path (a null that the typed decoder refuses).
    assert (
        decode(StatusUpdate, _status(v=2, future=[None], reason=None, receipt_keys=None)).receipt_keys == []
    )


def test_statuses_channels_and_kinds_this_code_does_not_know_still_decode() -> None:
    # Their consumers decide (the status tracker dead-letters an unknown status): decoding keeps them.
    update = decode(StatusUpdate, _status(status="ARCHIVED", channel="telegram"), uuid_fields=STATUS_IDS)
    assert (update.status, update.channel) == ("ARCHIVED", "telegram")
    assert (
        decode(
            Notification, b'{"user_id":"u","kind":"typing","message_id":"m","conversation_id":"c","at_ms":1}'
        ).kind
        == "typing"
    )


INVALID = [
    (None, "empty value"),
    (b"", "not JSON: "),
    (b"{not json", "not JSON: "),
    (b'{"message_id": "\xff"}', "not JSON: "),
    (_status(at_ms="x")[:-1] + b', "content": "\xff"}', "not JSON: "),  # bad bytes after a mistyped field
    (b"[1, 2]", "not a JSON object"),
    (b"3", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b"null", "not a JSON object"),
    (_status(at_ms=...), "not a StatusUpdate: Object missing required field `at_ms`"),
    (_status(at_ms="soon"), "not a StatusUpdate: Expected `int`, got `str` - at `$.at_ms`"),
    (_status(receipt_keys="a:b"), "not a StatusUpdate: Expected `array`, got `str` - at `$.receipt_keys`"),
    (_status(status=3), "not a StatusUpdate: Expected `str`, got `int` - at `$.status`"),
    (_status(message_id="nope"), "invalid message_id: 'nope'"),
    (_status(recipient_id=5), "invalid recipient_id: 5"),
    (_status(conversation_id=None), "invalid conversation_id: None"),
    (_status(ts_ms="1"), "invalid ts_ms: '1'"),
    (_status(ts_ms=1.0), "invalid ts_ms: 1.0"),
    (_status(ts_ms=True), "invalid ts_ms: True"),
    (_status(ts_ms=None), "invalid ts_ms: None"),
    (_status(ts_ms=2**63), f"invalid ts_ms: {2**63}"),
    (_status(message_id="nope", ts_ms=True), "invalid message_id: 'nope'"),  # ids are checked first
]


@pytest.mark.parametrize(("raw", "reason"), INVALID, ids=[r for _, r in INVALID])
def test_an_unusable_record_raises_invalid_record_with_its_reason(raw, reason) -> None:
    with pytest.raises(InvalidRecord) as caught:
        decode(StatusUpdate, raw, uuid_fields=STATUS_IDS)
    message = str(caught.value)
    assert message.startswith(reason) if reason.endswith(": ") else message == reason
    assert isinstance(caught.value, ValueError)


def test_ids_in_the_other_forms_uuid_accepts_are_valid_and_only_the_named_fields_are_checked() -> None:
    for form in (M.replace("-", ""), "{" + M + "}", "urn:uuid:" + M, M.upper()):
        assert decode(StatusUpdate, _status(message_id=form), uuid_fields=STATUS_IDS).message_id == form
    assert (
        decode(StatusUpdate, _status(sender_id="not-a-uuid"), uuid_fields=STATUS_IDS).sender_id
        == "not-a-uuid"
    )
    assert decode(StatusUpdate, _status(message_id="m")).message_id == "m"


def test_the_enums_are_the_strings_on_the_wire() -> None:
    assert [s.value for s in Status] == ["SENT", "DELIVERED", "READ", "FAILED"]
    assert [c.value for c in Channel] == ["whatsapp", "instagram", "native", "*"]
    assert [k.value for k in Kind] == ["message.new", "message.status"]
    # str subclasses: equal to, hashed like and formatted as the stored strings.
    assert (
        Status.READ == "READ" and {"READ": 1}[Status.READ] == 1 and f"{R}:{Channel.NATIVE}" == f"{R}:native"
    )
    assert (
        json.loads(
            encode(
                StatusUpdate(
                    message_id=M,
                    conversation_id=C,
                    ts_ms=TS,
                    recipient_id=R,
                    channel=Channel.ALL,
                    status=Status.FAILED,
                    at_ms=TS,
                )
            )
        )["status"]
        == "FAILED"
    )
    # One outbound topic and connector per delivery channel.
    assert set(DELIVERY_CHANNELS) == set(CONNECTORS) and Channel.ALL not in DELIVERY_CHANNELS


def test_a_tick_is_its_own_small_record_recognised_without_parsing() -> None:
    raw = encode(Tick(at_ms=TS))
    assert raw == b'{"__tick__":%d}' % TS
    assert is_tick(raw) and is_tick(b'{"__tick__": 5}')
    assert not is_tick(None) and not is_tick(encode(MINIMAL[1][0]))


def test_a_notification_can_be_kept_in_a_weak_set_by_value() -> None:
    # The gateway remembers new messages not yet written to any client in a WeakSet.
    raw = FULL[3][1].format(**IDS).encode()
    first, again = decode(Notification, raw), decode(Notification, raw)
    pending = weakref.WeakSet([first])
    assert again in pending and hash(first) == hash(again)
    with pytest.raises(AttributeError):
        first.status = "READ"  # type: ignore[misc]  # records are immutable
