"""Micro-benchmark: the size and the encode + decode time of the pipeline's table values, by key style.

A table write encodes its value with faust's ``json`` codec (orjson) and the changelog and
RocksDB keep those bytes; a read decodes them. Compared, for the typical values of
`receipt-states`, `receipt-finals` and `<channel>-schedule` (one 100 ms bucket of entries):
the short keys of version 1, those of version 2 (the schedule entries renamed, tables/scheduled_receipts.py),
and long keys (field names spelled out). Pure Python, one process, no servers::

    .venv/bin/python bench/table_values.py [--number 20000] [--repeat 5] [--bucket 20] [--json]

Prints, per value and style, the encoded bytes and the best of ``--repeat`` runs in
microseconds per encode + decode.
"""

from __future__ import annotations

import argparse
import json
import timeit
from typing import Any

from faust.serializers import codecs

from tables.scheduled_receipts import scheduled_receipt

M, C = "01a230ea-0971-78b2-96e4-3c18fa44b000", "01a230e8-0167-7ec2-ae1f-f4e95ea82de0"
S, R = "6f1c2a4e-0000-4000-8000-00000000000a", "6f1c2a4e-0000-4000-8000-00000000000b"
TS, OFFSET = 1796116973937, 18_446_112


def _entries(style: str) -> dict[str, Any]:
    """One message to one recipient on whatsapp, DELIVERED: its tracker entry, settled marker and schedule entry."""
    key = f"{R}:whatsapp"
    if style == "long":
        receipt = {"status": "DELIVERED", "delivered_ms": TS + 300, "read_ms": None}
        entry = {
            "v": 2,
            "conversation_id": C,
            "ts_ms": TS,
            "sender_id": S,
            "offset": OFFSET,
            "receipts": {key: receipt},
        }
        marker = {"v": 2, "offset": OFFSET, "entry": entry}
        scheduled = {
            "v": 2,
            "due_ms": TS + 2300,
            "status": "READ",
            "message_id": M,
            "conversation_id": C,
            "ts_ms": TS,
            "recipient_id": R,
            "sender_id": S,
            "receipt_keys": [key],
        }
    else:
        entry = {
            "cid": C,
            "ts": TS,
            "sid": S,
            "o": OFFSET,
            "r": {key: {"s": "DELIVERED", "d": TS + 300, "rd": None}},
        }
        marker = {"o": OFFSET, "e": entry}
        if style == "v1 short":
            scheduled = {"due": TS + 2300, "st": "READ", "m": M, "c": C, "t": TS, "r": R, "s": S, "k": [key]}
        else:
            scheduled = dict(
                scheduled_receipt(
                    due_ms=TS + 2300,
                    status="READ",
                    message_id=M,
                    conversation_id=C,
                    ts_ms=TS,
                    recipient_id=R,
                    sender_id=S,
                    receipt_keys=[key],
                )
            )
    return {"receipt-states entry": entry, "receipt-finals marker": marker, "schedule entry": scheduled}


def measure(*, number: int, repeat: int, bucket: int) -> list[dict[str, Any]]:
    codec = codecs.get_codec("json")
    rows = []
    for style in ("v1 short", "v2 short", "long"):
        values = _entries(style)
        values[f"schedule bucket ({bucket} entries)"] = [values["schedule entry"]] * bucket
        for name, value in values.items():
            encoded = codec.dumps(value)
            assert codec.loads(encoded) == value
            n = max(1, number // bucket) if name.startswith("schedule bucket") else number
            best = min(timeit.repeat(lambda v=value: codec.loads(codec.dumps(v)), number=n, repeat=repeat))
            rows.append({"value": name, "style": style, "bytes": len(encoded), "us": best / n * 1e6})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bucket", type=int, default=20, help="entries in one schedule bucket")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(number=args.number, repeat=args.repeat, bucket=args.bucket)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'value':<32} {'style':<9} {'bytes':>6} {'us enc+dec':>11}")
    for row in rows:
        print(f"{row['value']:<32} {row['style']:<9} {row['bytes']:>6} {row['us']:>11.2f}")


if __name__ == "__main__":
    main()
