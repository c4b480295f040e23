"""The inspector's HTML: every value escaped (a message whose content is <script> shows as text), values for people."""

from __future__ import annotations

from streams.inspector import render
from streams.inspector.message_page import divergences
from streams.inspector.values import describe

SCRIPT = "<script>alert('x')</script>"


def message_data(content: str, *, shown: bool) -> dict:
    receipt = {
        "recipient_id": "r1",
        "channel": "whatsapp",
        "status": "READ",
        "delivered_at": "t1",
        "read_at": "t2",
    }
    return {
        "message_id": "m1",
        "partition": 3,
        "settled": True,
        "in_tables": True,
        "state": {"overall": "READ", "ts": "t0", "receipts": [receipt]},
        "pending": [],
        "parts": {"receipt-finals": {"answered_by": "http://w2:6066", "found": True}},
        "cassandra": {
            "available": True,
            "found": True,
            "conversation_id": "c1",
            "sender_id": "s1",
            "ts": "t0",
            "status": "READ",
            "content": content,
            "content_shown": shown,
            "content_chars": len(content),
            "receipts": [{**receipt, "reason": None}],
        },
        "divergences": [],
    }


def test_script_content_is_rendered_as_text() -> None:
    html = render.page("message", message_data(SCRIPT, shown=True), show_content=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "http://w2:6066" in html


def test_keys_and_values_of_a_table_page_are_escaped() -> None:
    data = {
        "table": "receipt-states",
        "help": "h",
        "answered_by": "http://w1:6066",
        "partition": None,
        "prefix": '"><img src=x>',
        "limit": 50,
        "partitions": {"0": "active"},
        "entries": [
            {
                "partition": 0,
                "key": "<b>k</b>",
                "role": "active",
                "view": {"kind": "raw"},
                "value": {"x": "<i>"},
            }
        ],
        "next_cursor": "0.22",
    }
    html = render.page("table", data)
    assert "<b>k</b>" not in html and "&lt;b&gt;k&lt;/b&gt;" in html
    assert '"><img' not in html and "<i>" not in html
    assert "%3Cb%3Ek%3C/b%3E" in html  # the key's link is URL-encoded


def test_descriptions_for_people() -> None:
    bucket = describe(
        "whatsapp-schedule",
        "p3:b:17961480426",
        [
            {
                "v": 2,
                "due": 1796148042650,
                "st": "READ",
                "mid": "m",
                "cid": "c",
                "ts": 1,
                "rid": "r",
                "sid": "s",
                "k": ["r:whatsapp"],
            }
        ],
    )
    assert bucket["kind"] == "schedule-bucket" and bucket["starts"] == "2026-12-01T18:00:42.600+00:00"
    assert bucket["receipts"][0]["status"] == "READ" and bucket["receipts"][0]["due"].endswith("42.650+00:00")
    entry = {
        "cid": "c",
        "ts": 0,
        "sid": "s",
        "r": {"r1:whatsapp": {"s": "DELIVERED", "d": 5, "rd": None}},
        "o": 4,
    }
    state = describe("receipt-states", "m", entry)
    assert state["receipts"] == [
        {
            "recipient_id": "r1",
            "channel": "whatsapp",
            "status": "DELIVERED",
            "delivered_at": "1970-01-01T00:00:00.005+00:00",
            "read_at": None,
        }
    ]
    assert state["settled"] is False and state["overall"] == "DELIVERED"
    assert describe("router-routed", "m", 8)["routed_offset"] == 7
    assert describe("receipt-states", "m", {"r": "not a map"})["kind"] == "unreadable"


def test_a_receipt_that_differs_from_cassandra_is_a_divergence() -> None:
    view = {"receipts": [{"recipient_id": "r1", "channel": "whatsapp", "status": "READ"}]}
    row = {"found": True, "receipts": [{"recipient_id": "r1", "channel": "whatsapp", "status": "DELIVERED"}]}
    assert divergences(view, row) == [
        {"recipient_id": "r1", "channel": "whatsapp", "table": "READ", "cassandra": "DELIVERED"}
    ]
    row["receipts"][0]["status"] = "READ"
    assert divergences(view, row) == []
