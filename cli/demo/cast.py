"""The demo's people and conversations, made through the gRPC API as a client would: register, log in, talk."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc

from chat4all.retry import retry
from chat4all.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
)
from cli.client import open_channel

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
    """A registered, logged-in user of the demo (alice, bob, ...)."""

    name: str
    username: str
    user_id: str
    token: str
    channels: dict[str, str]

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying this person's access token."""
        return (("authorization", f"Bearer {self.token}"),)


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
        self._auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self._conversations = conversations_pb2_grpc.ConversationServiceStub(self.channel)
        self._messages = messages_pb2_grpc.MessageServiceStub(self.channel)
        self.people: dict[str, Person] = {}
        self._run = uuid.uuid4().hex[:6]

    def register(self, name: str, *, channels: dict[str, str]) -> Person:
        """Register ``name`` (made unique per run) with linked ``channels``, then log in."""
        username = f"demo-{name}-{self._run}"
        # A throwaway password: the demo's users live as long as the demo.
        password = uuid.uuid4().hex
        reply = self._auth.Register(
            auth_pb2.RegisterRequest(username=username, password=password, channels=channels),
            timeout=_CALL_TIMEOUT,
        )
        login = self._auth.Login(
            auth_pb2.LoginRequest(username=username, password=password), timeout=_CALL_TIMEOUT
        )
        person = Person(
            name=name, username=username, user_id=reply.user_id, token=login.access_token, channels=channels
        )
        self.people[name] = person
        return person

    def private_conversation(self, a: Person, b: Person) -> str:
        """The PRIVATE conversation of ``a`` and ``b``, created by ``a``."""
        return self._conversations.CreateConversation(
            conversations_pb2.CreateConversationRequest(
                type=conversations_pb2.CONVERSATION_TYPE_PRIVATE, participant_ids=[b.user_id]
            ),
            metadata=a.md,
            timeout=_CALL_TIMEOUT,
        ).conversation_id

    def group(self, creator: Person, others: list[Person], *, title: str) -> str:
        """A GROUP conversation of ``creator`` and ``others``."""
        return self._conversations.CreateConversation(
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
            lambda _attempt: self._messages.SendMessage(request, metadata=sender.md, timeout=_CALL_TIMEOUT),
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
