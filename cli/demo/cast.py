"""The demo's people and conversations, made through the gRPC API as a client would: register, log in, talk."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc

from chat4all.retry import retry
from chat4all.v1 import conversations_pb2, messages_pb2
from cli.client import open_channel
from cli.harness.api_client import ApiStubs, TestUser

_CALL_TIMEOUT = 15.0
# SendMessage sheds load with RESOURCE_EXHAUSTED (rate limit, admission); a client waits and retries.
_SEND_ATTEMPTS = 8
_SEND_BACKOFF = 0.25


def _sheds_load(exc: Exception) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
    )


@dataclass(frozen=True, kw_only=True)
class Person:
    """A registered, logged-in user of the demo (alice, bob, ...): a name and linked channels beside the account."""

    name: str
    account: TestUser
    channels: dict[str, str]

    @property
    def user_id(self) -> str:
        """The person's user id."""
        return self.account.user_id

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying this person's access token."""
        return self.account.md


@dataclass(frozen=True, kw_only=True)
class Sent:
    """A message the API accepted: its id, its conversation and who sent it when (wall clock, s)."""

    message_id: str
    conversation_id: str
    sender: str
    content: str
    at: float


class Cast:
    """Stubs on one channel to the API, and the people and conversations the demo made through them."""

    def __init__(self, *, target: str, ca_file: Path | None = None) -> None:
        self.target = target
        self.channel = open_channel(target, ca_file)
        self._api = ApiStubs(channel=self.channel)
        self.people: dict[str, Person] = {}
        self._run = uuid.uuid4().hex[:6]

    def register(self, name: str, *, channels: dict[str, str]) -> Person:
        """Register ``name`` (made unique per run) with linked ``channels``, then log in."""
        # A throwaway password (the harness's default): the demo's users live as long as the demo.
        user = self._api.register_and_login(f"demo-{name}-{self._run}", channels=channels)
        person = Person(name=name, account=user, channels=channels)
        self.people[name] = person
        return person

    def private_conversation(self, a: Person, b: Person) -> str:
        """The PRIVATE conversation of ``a`` and ``b``, created by ``a``."""
        return self._api.private_conversation(a.account, b.account, timeout=_CALL_TIMEOUT)

    def group(self, creator: Person, others: list[Person], *, title: str) -> str:
        """A GROUP conversation of ``creator`` and ``others``."""
        return self._api.conversations.CreateConversation(
            conversations_pb2.CreateConversationRequest(
                type=conversations_pb2.CONVERSATION_TYPE_GROUP,
                participant_ids=[p.user_id for p in others],
                title=title,
            ),
            metadata=creator.md,
            timeout=_CALL_TIMEOUT,
        ).conversation_id

    def send(self, sender: Person, conversation_id: str, content: str) -> Sent:
        """SendMessage, retried while the API sheds load (RESOURCE_EXHAUSTED, UNAVAILABLE)."""
        request = messages_pb2.SendMessageRequest(
            conversation_id=conversation_id, content=content, client_message_id=uuid.uuid4().hex
        )
        # The same client_message_id on every attempt: a retry of a send that did go through is
        # answered, not stored twice.
        reply = retry(
            lambda _attempt: self._api.messages.SendMessage(
                request, metadata=sender.md, timeout=_CALL_TIMEOUT
            ),
            attempts=_SEND_ATTEMPTS,
            retryable=_sheds_load,
            delay=lambda _exc, attempt: _SEND_BACKOFF * attempt,
        )
        return Sent(
            message_id=reply.message_id,
            conversation_id=conversation_id,
            sender=sender.name,
            content=content,
            at=time.time(),
        )

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()
