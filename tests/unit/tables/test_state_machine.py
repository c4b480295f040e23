"""Receipt state machine rules (the design card's section 3) and the message aggregate."""

from __future__ import annotations

from tables.state_machine import (
    APPLIED,
    DUPLICATE,
    REJECTED,
    STALE,
    UNKNOWN,
    aggregate,
    apply_update,
    is_settled,
    new_entry,
    write_version,
)

BOB_WA, BOB_IG, CAROL_WA = "bob:whatsapp", "bob:instagram", "carol:whatsapp"


def _entry(keys=(BOB_WA,)):
    return new_entry(conversation_id="c", ts_ms=1000, sender_id="alice", receipt_keys=list(keys))


def test_receipts_move_forward_only():
    e = _entry()
    assert apply_update(e, recipient_id="bob", channel="whatsapp", status="DELIVERED", at_ms=10).outcomes == [
        APPLIED
    ]
    assert apply_update(e, recipient_id="bob", channel="whatsapp", status="READ", at_ms=20).outcomes == [
        APPLIED
    ]
    late = apply_update(e, recipient_id="bob", channel="whatsapp", status="DELIVERED", at_ms=30)
    assert late.outcomes == [STALE] and not late.changed
    assert e["r"][BOB_WA] == {"s": "READ", "d": 10, "rd": 20}


def test_read_after_sent_sets_delivered_too():
    e = _entry()
    out = apply_update(e, recipient_id="bob", channel="whatsapp", status="READ", at_ms=50)
    assert out.changes[0].delivered_ms == 50 and out.changes[0].read_ms == 50


def test_duplicate_is_a_no_op():
    e = _entry()
    apply_update(e, recipient_id="bob", channel="whatsapp", status="DELIVERED", at_ms=10)
    again = apply_update(e, recipient_id="bob", channel="whatsapp", status="DELIVERED", at_ms=99)
    assert again.outcomes == [DUPLICATE] and e["r"][BOB_WA]["d"] == 10


def test_failed_is_terminal_and_only_follows_sent():
    e = _entry((BOB_WA, CAROL_WA))
    assert apply_update(
        e, recipient_id="bob", channel="whatsapp", status="FAILED", at_ms=5, reason="x"
    ).outcomes == [APPLIED]
    assert apply_update(e, recipient_id="bob", channel="whatsapp", status="READ", at_ms=6).outcomes == [
        REJECTED
    ]
    apply_update(e, recipient_id="carol", channel="whatsapp", status="DELIVERED", at_ms=7)
    assert apply_update(e, recipient_id="carol", channel="whatsapp", status="FAILED", at_ms=8).outcomes == [
        STALE
    ]


def test_star_channel_reads_every_channel_of_that_recipient_only():
    e = _entry((BOB_WA, BOB_IG, CAROL_WA))
    out = apply_update(e, recipient_id="bob", channel="*", status="READ", at_ms=40)
    assert sorted(c.key for c in out.changes) == [BOB_IG, BOB_WA]
    assert e["r"][CAROL_WA]["s"] == "SENT"


def test_unknown_receipt_and_status_change_nothing():
    e = _entry()
    assert apply_update(e, recipient_id="dave", channel="native", status="DELIVERED", at_ms=1).outcomes == [
        UNKNOWN
    ]
    assert apply_update(e, recipient_id="bob", channel="whatsapp", status="SEEN", at_ms=1).outcomes == [
        REJECTED
    ]
    assert e["r"][BOB_WA]["s"] == "SENT"


def test_aggregate_is_the_least_advanced_recipient_and_a_recipient_is_its_best_channel():
    e = _entry((BOB_WA, BOB_IG, CAROL_WA))
    apply_update(e, recipient_id="bob", channel="instagram", status="READ", at_ms=30)
    assert aggregate(e).status == "SENT"  # carol has nothing yet
    apply_update(e, recipient_id="carol", channel="whatsapp", status="DELIVERED", at_ms=40)
    agg = aggregate(e)
    assert (agg.status, agg.delivered_ms, agg.read_ms) == ("DELIVERED", 40, None)
    apply_update(e, recipient_id="carol", channel="whatsapp", status="READ", at_ms=50)
    agg = aggregate(e)
    assert (agg.status, agg.delivered_ms, agg.read_ms) == ("READ", 40, 50)
    assert not is_settled(e)  # bob's whatsapp receipt can still move
    apply_update(e, recipient_id="bob", channel="whatsapp", status="FAILED", at_ms=60)
    assert aggregate(e).status == "READ" and is_settled(e)


def test_a_recipient_failed_on_every_channel_fails_the_message():
    e = _entry((BOB_WA, CAROL_WA))
    apply_update(e, recipient_id="bob", channel="whatsapp", status="FAILED", at_ms=1)
    apply_update(e, recipient_id="carol", channel="whatsapp", status="READ", at_ms=2)
    assert aggregate(e).status == "FAILED"


def test_write_version_grows_with_every_accepted_change():
    e = _entry((BOB_WA, CAROL_WA))
    seen = [write_version(e)]
    for rid, st in [("bob", "DELIVERED"), ("carol", "READ"), ("bob", "READ")]:
        apply_update(e, recipient_id=rid, channel="whatsapp", status=st, at_ms=1)
        seen.append(write_version(e))
    assert seen == sorted(set(seen))
