"""The local stack's KRaft cluster ids: never one that kafka-storage's parser reads as an option."""

from __future__ import annotations

import base64
import uuid

from cli.stack import kafka


def test_cluster_ids_never_start_with_a_dash(monkeypatch) -> None:
    # Feed it the UUIDs whose base64 starts with '-' first (bytes 0xf8..0xfb), then a normal one.
    dashed = uuid.UUID(bytes=b"\xf8" + b"\x00" * 15)
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    normal = uuid.UUID(bytes=b"\x10" + b"\x00" * 15)
    queue = [dashed, dashed, normal]
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: queue.pop(0))
    cluster_id = kafka.new_cluster_id()
    assert not cluster_id.startswith("-")
    assert base64.urlsafe_b64decode(cluster_id + "==") == normal.bytes
    assert queue == []


def test_cluster_ids_are_22_url_safe_characters() -> None:
    for _ in range(200):
        cluster_id = kafka.new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
