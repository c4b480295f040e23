"""Reading what the pipeline wrote to Cassandra and waiting, bounded in time, until it is there."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from cassandra.cluster import Session


def message_rows(session: Session, conversation_ids: Iterable[str]) -> dict[str, list[Any]]:
    """Every messages row of each conversation, in clustering order."""
    out = {}
    for cid in conversation_ids:
        out[cid] = list(
            session.execute(
                "SELECT message_id, ts, content, status, delivered_at, read_at, receipts FROM messages WHERE conversation_id = %s",
                (uuid.UUID(cid),),
            )
        )
    return out


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.5, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}"[:2000])


class _Progress(dict):
    """A falsy progress report, so wait_until keeps polling but can show where it got to."""

    def __bool__(self) -> bool:
        return False


def wait_all_status(
    session: Session, conversations: Iterable[str], *, count: int, status: str, timeout: float
) -> dict[str, list[Any]]:
    """Wait until ``count`` messages of these conversations have aggregate ``status``; returns the rows."""
    conversations = list(conversations)

    def check() -> dict[str, list[Any]] | _Progress:
        rows = message_rows(session, conversations)
        done = sum(1 for rs in rows.values() for r in rs if r.status == status)
        if done >= count:
            return rows
        seen: dict[str, int] = {}
        for rs in rows.values():
            for r in rs:
                seen[r.status] = seen.get(r.status, 0) + 1
        return _Progress(seen)

    return wait_until(check, timeout=timeout, interval=1, what=f"{count} messages {status}")


def wait_all_receipts(
    session: Session, conversations: Iterable[str], *, count: int, status: str = "READ", timeout: float
) -> dict[str, list[Any]]:
    """Wait until ``count`` messages have every receipt (not only the aggregate) at ``status``."""
    conversations = list(conversations)

    def check() -> dict[str, list[Any]] | _Progress:
        rows = message_rows(session, conversations)
        done = sum(
            1
            for rs in rows.values()
            for r in rs
            if r.receipts and all(v.status == status for v in r.receipts.values())
        )
        if done >= count:
            return rows
        stuck: dict[str, int] = {}
        for rs in rows.values():
            for r in rs:
                for v in (r.receipts or {}).values():
                    stuck[v.status] = stuck.get(v.status, 0) + 1
        return _Progress(stuck)

    return wait_until(
        check, timeout=timeout, interval=1, what=f"{count} messages with every receipt {status}"
    )
