"""The delivery-receipt state machine: per recipient and channel, forward only (the design card's section 3).

Pure functions over plain dicts (the status tracker's table values are JSON), so the
rules are unit-tested without Kafka. The entries' shape is MessageEntry: short keys, because
faust encodes the whole entry on every table write (bench/table_values.py prices long ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from chat4all.wire import Channel, Status

# Plain strings, as the table values hold them.
SENT, DELIVERED, READ, FAILED = (
    Status.SENT.value,
    Status.DELIVERED.value,
    Status.READ.value,
    Status.FAILED.value,
)
STATUSES = (SENT, DELIVERED, READ, FAILED)

# Forward order of a receipt. FAILED is terminal and ranks highest so that the write
# version (sum of ranks, see write_version) grows with every accepted change.
RANK = {SENT: 0, DELIVERED: 1, READ: 2, FAILED: 3}

APPLIED = "applied"
DUPLICATE = "duplicate"
STALE = "stale"
REJECTED = "rejected"
UNKNOWN = "unknown"


class Receipt(TypedDict):
    """One recipient's receipt on one channel, as `receipt-states` stores it."""

    s: str  # status: SENT, DELIVERED, READ or FAILED
    d: int | None  # delivered at, ms since the epoch
    rd: int | None  # read at, ms since the epoch


class MessageEntry(TypedDict):
    """A message's entry in `receipt-states` (key: message id), every receipt of it in one value."""

    cid: str  # conversation id
    ts: int  # the message's ts_ms
    sid: str | None  # sender id, who is notified of each change
    r: dict[str, Receipt]  # receipts by '<recipient_id>:<channel>'
    o: NotRequired[int]  # offset of the last `status-updates` record applied (set by the tracker)


def receipt_key(recipient_id: str, channel: str) -> str:
    """The '<recipient_id>:<channel>' key of a receipt (also the messages.receipts map key)."""
    return f"{recipient_id}:{channel}"


def split_key(key: str) -> tuple[str, str]:
    """Recipient id and channel of a receipt key."""
    recipient_id, _, channel = key.rpartition(":")
    return recipient_id, channel


def new_entry(
    *, conversation_id: str, ts_ms: int, sender_id: str | None, receipt_keys: list[str]
) -> MessageEntry:
    """A message entry with every receipt at SENT (what the router wrote to Cassandra)."""
    return {
        "cid": conversation_id,
        "ts": ts_ms,
        "sid": sender_id,
        "r": {k: {"s": SENT, "d": None, "rd": None} for k in receipt_keys},
    }


@dataclass
class Change:
    """One receipt that moved: its key and its new state."""

    key: str
    status: str
    delivered_ms: int | None
    read_ms: int | None
    reason: str | None = None


@dataclass
class Outcome:
    """Result of applying one status update to an entry: what changed and how each target fared."""

    changes: list[Change] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True if the update changed at least one receipt."""
        return bool(self.changes)


def _targets(entry: MessageEntry, recipient_id: str, channel: str) -> list[str]:
    if channel == Channel.ALL:
        return [k for k in entry["r"] if split_key(k)[0] == recipient_id]
    key = receipt_key(recipient_id, channel)
    return [key] if key in entry["r"] else []


def apply_update(
    entry: MessageEntry,
    *,
    recipient_id: str,
    channel: str,
    status: str,
    at_ms: int,
    reason: str | None = None,
) -> Outcome:
    """Apply a status update to ``entry`` in place; ``channel='*'`` means every channel of that recipient.

    Rules: receipts only move forward; READ after SENT also sets delivered_at; a late
    or repeated update changes nothing; FAILED is terminal and only follows SENT.
    """
    result = Outcome()
    if status not in RANK:
        result.outcomes.append(REJECTED)
        return result
    targets = _targets(entry, recipient_id, channel)
    if not targets:
        result.outcomes.append(UNKNOWN)
        return result
    for key in targets:
        receipt = entry["r"][key]
        current = receipt["s"]
        if current == FAILED:
            result.outcomes.append(DUPLICATE if status == FAILED else REJECTED)
            continue
        if status == FAILED and current != SENT:
            # A give-up after the recipient already has it is not a failure.
            result.outcomes.append(STALE)
            continue
        if RANK[status] == RANK[current]:
            result.outcomes.append(DUPLICATE)
            continue
        if RANK[status] < RANK[current]:
            result.outcomes.append(STALE)
            continue
        receipt["s"] = status
        if status in (DELIVERED, READ) and receipt["d"] is None:
            receipt["d"] = at_ms
        if status == READ:
            receipt["rd"] = at_ms
        result.outcomes.append(APPLIED)
        result.changes.append(
            Change(key=key, status=status, delivered_ms=receipt["d"], read_ms=receipt["rd"], reason=reason)
        )
    return result


@dataclass(frozen=True)
class Aggregate:
    """The message's overall status: the least advanced recipient (as group chats show it)."""

    status: str
    delivered_ms: int | None
    read_ms: int | None


def aggregate(entry: MessageEntry) -> Aggregate:
    """Overall status of a message entry.

    A recipient's status is the most advanced across their channels (read on any channel
    is read), FAILED only if every channel failed. The message's status is the least
    advanced recipient, a FAILED recipient counting as least advanced of all.
    delivered_at / read_at are set once every recipient got there: the latest time.
    """
    per_recipient: dict[str, list[Receipt]] = {}
    for key, receipt in entry["r"].items():
        per_recipient.setdefault(split_key(key)[0], []).append(receipt)
    if not per_recipient:
        return Aggregate(status=SENT, delivered_ms=None, read_ms=None)
    levels: list[tuple[int, int | None, int | None]] = []  # (level, delivered, read); FAILED = -1
    for receipts in per_recipient.values():
        alive = [r for r in receipts if r["s"] != FAILED]
        if not alive:
            levels.append((-1, None, None))
            continue
        best = max(alive, key=lambda r: RANK[r["s"]])
        delivered = min((r["d"] for r in alive if r["d"] is not None), default=None)
        read = min((r["rd"] for r in alive if r["rd"] is not None), default=None)
        levels.append((RANK[best["s"]], delivered, read))
    low = min(level for level, _, _ in levels)
    if low < 0:
        return Aggregate(status=FAILED, delivered_ms=None, read_ms=None)
    status = {0: SENT, 1: DELIVERED, 2: READ}[low]
    delivered_ms = max(d for _, d, _ in levels) if low >= 1 else None  # type: ignore[type-var]
    read_ms = max(r for _, _, r in levels) if low >= 2 else None  # type: ignore[type-var]
    return Aggregate(status=status, delivered_ms=delivered_ms, read_ms=read_ms)


def current_changes(
    entry: MessageEntry, *, recipient_id: str | None = None, channel: str | None = None
) -> list[Change]:
    """The entry's receipts as Changes at their current state (all, or those an update targets).

    For writing an entry again as it stands: a replayed update after a crash, whose table
    write survived while its Cassandra write may not have.
    """
    keys = list(entry["r"]) if recipient_id is None else _targets(entry, recipient_id, channel or Channel.ALL)
    return [
        Change(key=k, status=entry["r"][k]["s"], delivered_ms=entry["r"][k]["d"], read_ms=entry["r"][k]["rd"])
        for k in keys
    ]


def is_settled(entry: MessageEntry) -> bool:
    """True when no receipt can move any more (all READ or FAILED): the entry may leave the table."""
    return all(r["s"] in (READ, FAILED) for r in entry["r"].values())


def write_version(entry: MessageEntry) -> int:
    """A number that grows with every accepted change (sum of receipt ranks).

    Cassandra writes use ``USING TIMESTAMP ts_ms*1000 + 1 + version`` (the router writes
    SENT at ``ts_ms*1000``): writes of one message may land in any order, or twice after a
    crash, and Cassandra still keeps the most advanced state.
    """
    return sum(RANK[r["s"]] for r in entry["r"].values())
