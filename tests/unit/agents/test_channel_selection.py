"""Channel selection: recipients = participants minus sender, on linked or requested channels, native otherwise."""

from __future__ import annotations

from agents.channel_selection import select_targets


def _keys(targets):
    return [t.key for t in targets]


def test_each_recipient_on_each_linked_channel_sender_excluded():
    targets = select_targets(
        sender_id="a",
        participant_ids={"a", "b", "c"},
        linked_channels={"a": {"whatsapp": "+1"}, "b": {"whatsapp": "+2", "instagram": "@b"}, "c": {}},
    )
    assert _keys(targets) == ["b:instagram", "b:whatsapp", "c:native"]
    assert {t.key: t.handle for t in targets}["b:whatsapp"] == "+2"


def test_requested_channels_restrict_and_fall_back_to_native():
    linked = {"b": {"whatsapp": "+2", "instagram": "@b"}, "c": {"whatsapp": "+3"}}
    targets = select_targets(
        sender_id="a", participant_ids={"a", "b", "c"}, linked_channels=linked, requested=["instagram"]
    )
    assert _keys(targets) == ["b:instagram", "c:native"]
    targets = select_targets(
        sender_id="a", participant_ids={"a", "b"}, linked_channels=linked, requested=["native", "whatsapp"]
    )
    assert _keys(targets) == ["b:whatsapp", "b:native"]


def test_unknown_linked_channels_are_ignored():
    targets = select_targets(
        sender_id="a", participant_ids={"a", "b"}, linked_channels={"b": {"telegram": "x"}}
    )
    assert _keys(targets) == ["b:native"]
