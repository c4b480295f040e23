"""api.wire.message_event writes exactly what streams.records.MessageEvent(...).dumps() writes."""

from __future__ import annotations

import json

import pytest

from api.wire import message_event
from streams.records import MessageEvent

CASES = [
    {"content": "hello", "file_id": None, "channels": [], "client_message_id": None},
    {"content": "", "file_id": "0b9e4d0e-0000-4000-8000-000000000001", "channels": ["whatsapp", "native"], "client_message_id": "cm-1"},
    {"content": 'olá ✓ "quoted" \\ back\nslash \t tab \u2028 😀 \x00', "file_id": None, "channels": ["instagram"], "client_message_id": "ключ"},
]


@pytest.mark.parametrize("fields", CASES)
def test_same_bytes_as_the_faust_record(fields: dict) -> None:
    ids = {
        "message_id": "01a230ea-0971-78b2-96e4-3c18fa44b000",
        "conversation_id": "01a230e8-0167-7ec2-ae1f-f4e95ea82de0",
        "sender_id": "6f1c2a4e-0000-4000-8000-00000000000a",
        "ts_ms": 1796116973937,
    }
    ours = message_event(**ids, **fields)
    theirs = MessageEvent(**ids, **fields).dumps()
    assert ours == theirs
    # Every field of the record, in order: a field added to MessageEvent must be added here too.
    assert list(json.loads(ours)) == list(MessageEvent._options.fields)
    assert MessageEvent.loads(ours).content == fields["content"]
