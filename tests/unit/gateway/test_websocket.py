"""WebSocket frames: a notification parsed, unknown fields ignored, framed for the client."""

from __future__ import annotations

from chat4all.wire import Notification, decode
from gateway.websocket import frame


def test_the_gateway_parses_a_notification_ignoring_unknown_fields_and_frames_it_without_its_user() -> None:
    raw = (
        b'{"user_id":"u","kind":"message.status","message_id":"m","conversation_id":"c","at_ms":5,'
        b'"status":"READ","future_field":1,"receipt_keys":["u:native"]}'
    )
    ev = decode(Notification, raw)
    assert ev.status == "READ" and ev.receipt_keys == ("u:native",)
    assert '"user_id"' not in frame(ev) and '"status": "READ"' in frame(ev)
