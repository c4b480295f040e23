"""Shared pieces of the pipeline unit tests: an in-memory PipelineStore stand-in and record builders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from streams.cassandra_io import Conversation


@dataclass
class MemoryStore:
    """What the agents need from Cassandra, in memory (pure unit tests only)."""

    conversations: dict[str, set[str]] = field(default_factory=dict)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipt_writes: list[dict[str, Any]] = field(default_factory=list)

    async def conversation(self, conversation_id: str, *, fresh: bool = False) -> Conversation | None:
        parts = self.conversations.get(conversation_id)
        return None if parts is None else Conversation(conversation_id=conversation_id, participant_ids=frozenset(parts))

    async def user_channels(self, user_ids: list[str]) -> dict[str, dict[str, str]]:
        return {u: self.channels.get(u, {}) for u in user_ids}

    async def persist_message(self, **kwargs: Any) -> None:
        self.messages.setdefault(kwargs["message_id"], {"writes": 0})
        self.messages[kwargs["message_id"]].update(kwargs)
        self.messages[kwargs["message_id"]]["writes"] += 1

    async def persist_receipts(self, **kwargs: Any) -> None:
        self.receipt_writes.append(kwargs)

    async def message_receipts(self, **kwargs: Any) -> Any:
        return None


def new_id() -> str:
    return str(uuid.uuid4())
