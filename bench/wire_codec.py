"""Micro-benchmark: decode + encode of each wire record, chat4all/wire.py against faust records with orjson.

The baseline is what the topics were read and written with before chat4all/wire.py: faust
``Record`` subclasses with the same fields (declared below, the only faust records left in the
repository), decoded by ``orjson.loads`` + ``Record.from_data`` + the same id and ts_ms checks,
encoded by ``Record.dumps()``. Pure Python, one process, no servers::

    .venv/bin/python bench/wire_codec.py [--number 20000] [--repeat 5] [--json]

Prints, per record type, the best of ``--repeat`` runs in microseconds per record.
"""

from __future__ import annotations

import argparse
import json
import timeit
import uuid
from collections.abc import Callable
from typing import Any

import faust
import orjson

from chat4all import wire

M, C = "01a230ea-0971-78b2-96e4-3c18fa44b000", "01a230e8-0167-7ec2-ae1f-f4e95ea82de0"
S, R = "6f1c2a4e-0000-4000-8000-00000000000a", "6f1c2a4e-0000-4000-8000-00000000000b"
TS = 1796116973937


class _Old(faust.Record, serializer="json", include_metadata=False, abstract=True):
    pass


class OldMessageEvent(_Old):
    message_id: str
    conversation_id: str
    sender_id: str
    ts_ms: int
    content: str = ""
    file_id: str | None = None
    channels: list[str] = []
    client_message_id: str | None = None
    v: int = 1


class OldOutboundEvent(_Old):
    message_id: str
    conversation_id: str
    sender_id: str
    ts_ms: int
    recipient_id: str
    channel: str
    handle: str | None = None
    content: str = ""
    file_id: str | None = None
    receipt_keys: list[str] = []
    attempt: int = 0
    v: int = 1


class OldStatusUpdate(_Old):
    message_id: str
    conversation_id: str
    ts_ms: int
    recipient_id: str
    channel: str
    status: str
    at_ms: int
    receipt_keys: list[str] = []
    reason: str | None = None
    source: str | None = None
    sender_id: str | None = None
    v: int = 1


class OldNotification(_Old):
    user_id: str
    kind: str
    message_id: str
    conversation_id: str
    at_ms: int
    status: str | None = None
    recipient_id: str | None = None
    channel: str | None = None
    sender_id: str | None = None
    content: str | None = None
    ts_ms: int | None = None
    receipt_keys: list[str] = []
    v: int = 1


class OldDeadLetter(_Old):
    topic: str
    key: str | None
    payload: str
    reason: str
    at_ms: int
    attempts: int = 0
    message_id: str | None = None
    conversation_id: str | None = None
    v: int = 1


def old_decode(record_type: type[faust.Record], raw: bytes, uuid_fields: tuple[str, ...]) -> Any:
    """The decode the topics were read with before chat4all/wire.py (errors left out: valid input only)."""
    record = record_type.from_data(orjson.loads(raw))
    for name in uuid_fields:
        uuid.UUID(str(getattr(record, name)))
    ts = getattr(record, "ts_ms", 0)
    if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)):
        raise ValueError(ts)
    return record


# (name, the record as the pipeline writes it, new type, old type, the id fields its reader checks)
CASES: list[tuple[str, wire._Wire, type, type[faust.Record], tuple[str, ...]]] = [
    (
        "MessageEvent",
        wire.MessageEvent(
            message_id=M,
            conversation_id=C,
            sender_id=S,
            ts_ms=TS,
            content="hello there",
            channels=["whatsapp"],
            client_message_id="cm-1",
        ),
        wire.MessageEvent,
        OldMessageEvent,
        ("message_id", "conversation_id", "sender_id"),
    ),
    (
        "OutboundEvent",
        wire.OutboundEvent(
            message_id=M,
            conversation_id=C,
            sender_id=S,
            ts_ms=TS,
            recipient_id=R,
            channel="whatsapp",
            handle="+5511999990000",
            content="hello there",
            receipt_keys=[f"{R}:whatsapp", f"{R}:native"],
        ),
        wire.OutboundEvent,
        OldOutboundEvent,
        ("message_id", "conversation_id", "recipient_id"),
    ),
    (
        "StatusUpdate",
        wire.StatusUpdate(
            message_id=M,
            conversation_id=C,
            ts_ms=TS,
            recipient_id=R,
            channel="whatsapp",
            status="DELIVERED",
            at_ms=TS + 300,
            receipt_keys=[f"{R}:whatsapp", f"{R}:native"],
            source="whatsapp",
            sender_id=S,
        ),
        wire.StatusUpdate,
        OldStatusUpdate,
        ("message_id", "conversation_id", "recipient_id"),
    ),
    (
        "Notification",
        wire.Notification(
            user_id=S,
            kind="message.status",
            message_id=M,
            conversation_id=C,
            at_ms=TS + 300,
            status="DELIVERED",
            recipient_id=R,
            channel="whatsapp",
        ),
        wire.Notification,
        OldNotification,
        (),
    ),
    (
        "DeadLetter",
        wire.DeadLetter(
            topic="messages",
            key=C,
            payload='{"message_id":"x"}',
            reason="conversation not found",
            at_ms=TS,
            message_id=M,
            conversation_id=C,
        ),
        wire.DeadLetter,
        OldDeadLetter,
        (),
    ),
]


def _best_us(fn: Callable[[], Any], *, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def run(*, number: int, repeat: int) -> list[dict[str, Any]]:
    """Decode + encode each record type both ways; raises if the two disagree on the bytes."""
    rows = []
    for name, record, new_type, old_type, ids in CASES:
        raw = wire.encode(record)
        if old_type.from_data(orjson.loads(raw)).dumps() != raw:
            raise AssertionError(f"{name}: old and new encodings differ")

        def new(raw: bytes = raw, t: type = new_type, ids: tuple[str, ...] = ids) -> bytes:
            return wire.encode(wire.decode(t, raw, uuid_fields=ids))

        def old(raw: bytes = raw, t: type[faust.Record] = old_type, ids: tuple[str, ...] = ids) -> bytes:
            return old_decode(t, raw, ids).dumps()

        old_us, new_us = (
            _best_us(old, number=number, repeat=repeat),
            _best_us(new, number=number, repeat=repeat),
        )
        rows.append(
            {
                "record": name,
                "bytes": len(raw),
                "old_us": round(old_us, 2),
                "new_us": round(new_us, 2),
                "speedup": round(old_us / new_us, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = run(number=args.number, repeat=args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'record':<14}{'bytes':>7}{'faust+orjson us':>17}{'wire us':>10}{'speedup':>9}")
    for r in rows:
        print(
            f"{r['record']:<14}{r['bytes']:>7}{r['old_us']:>17.2f}{r['new_us']:>10.2f}{r['speedup']:>8.1f}x"
        )


if __name__ == "__main__":
    main()
