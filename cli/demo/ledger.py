"""What Cassandra holds for the messages the demo sent: rows per message id, aggregate status, each receipt's status."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cli.demo.cast import Sent


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """One message as stored: how many messages rows carry its id, its status and its receipts (key -> status)."""

    message_id: str
    rows: int
    status: str
    receipts: dict[str, str]
    delivered_at: dict[str, Any] = field(default_factory=dict)
    read_at: dict[str, Any] = field(default_factory=dict)

    def all_receipts(self, status: str) -> bool:
        """True when the message has receipts and every one is at ``status``."""
        return bool(self.receipts) and all(s == status for s in self.receipts.values())


@dataclass(frozen=True, kw_only=True)
class Ledger:
    """The sent messages against the stored ones: missing, stored twice, and how far each got."""

    sent: int
    stored: dict[str, StoredMessage]
    missing: list[str]
    duplicated: list[str]

    def count_all(self, status: str) -> int:
        """Messages whose every receipt is at ``status``."""
        return sum(1 for m in self.stored.values() if m.all_receipts(status))

    def statuses(self) -> dict[str, int]:
        """Aggregate status -> number of messages (a message missing counts under MISSING)."""
        counts = Counter(m.status for m in self.stored.values())
        if self.missing:
            counts["MISSING"] = len(self.missing)
        return dict(counts)

    def complete(self, status: str = "READ") -> bool:
        """Nothing lost, nothing stored twice, every receipt of every message at ``status``."""
        return not self.missing and not self.duplicated and self.count_all(status) == self.sent


class MessageLedger:
    """Reads the messages rows of the demo's conversations from Cassandra (one query per conversation)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._select = session.prepare(
            "SELECT message_id, status, receipts FROM messages WHERE conversation_id = ?"
        )

    def ledger(self, sent: list[Sent]) -> Ledger:
        """The ledger of ``sent``: each message's rows and statuses as Cassandra holds them now."""
        wanted = {s.message_id for s in sent}
        rows_per_id: Counter[str] = Counter()
        stored: dict[str, StoredMessage] = {}
        for conversation_id in sorted({s.conversation_id for s in sent}):
            for row in self._session.execute(self._select, (uuid.UUID(conversation_id),)):
                message_id = str(row.message_id)
                if message_id not in wanted:
                    continue
                rows_per_id[message_id] += 1
                receipts = row.receipts or {}
                stored[message_id] = StoredMessage(
                    message_id=message_id,
                    rows=rows_per_id[message_id],
                    status=row.status or "",
                    receipts={k: v.status for k, v in receipts.items()},
                    delivered_at={k: v.delivered_at for k, v in receipts.items()},
                    read_at={k: v.read_at for k, v in receipts.items()},
                )
        return Ledger(
            sent=len(wanted),
            stored=stored,
            missing=sorted(wanted - set(stored)),
            duplicated=sorted(m for m, n in rows_per_id.items() if n > 1),
        )
