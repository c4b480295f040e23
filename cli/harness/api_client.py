"""Synchronous gRPC stubs for one API server (any, or one the harness started), and the users a client registers on it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from chat4all.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    messages_pb2_grpc,
    users_pb2_grpc,
)
from cli.client import open_channel
from cli.harness.api_process import ApiProcess

_MAX_MESSAGE_BYTES = 8 * 1024**2


@dataclass(kw_only=True)
class TestUser:
    """A registered, logged-in user: its id, credentials and access token."""

    __test__ = False  # not a test class, despite its name

    user_id: str
    username: str
    password: str
    token: str

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying this user's token."""
        return (("authorization", f"Bearer {self.token}"),)


@dataclass(kw_only=True)
class ApiStubs:
    """Synchronous stubs on one channel to any API (one this harness started or not), and its users."""

    channel: grpc.Channel
    auth: auth_pb2_grpc.AuthServiceStub = field(init=False)
    users: users_pb2_grpc.UserServiceStub = field(init=False)
    conversations: conversations_pb2_grpc.ConversationServiceStub = field(init=False)
    messages: messages_pb2_grpc.MessageServiceStub = field(init=False)
    health: health_pb2_grpc.HealthStub = field(init=False)

    def __post_init__(self) -> None:
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.users = users_pb2_grpc.UserServiceStub(self.channel)
        self.conversations = conversations_pb2_grpc.ConversationServiceStub(self.channel)
        self.messages = messages_pb2_grpc.MessageServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def stub(self, stub_class: type) -> Any:
        """Any other service's stub on the same channel, e.g. files_pb2_grpc.FileServiceStub."""
        return stub_class(self.channel)

    def register_and_login(
        self, prefix: str = "user", *, channels: dict[str, str] | None = None, password: str | None = None
    ) -> TestUser:
        """A new user with a unique name, logged in."""
        username = f"{prefix}-{uuid.uuid4().hex[:10]}"
        password = password or f"pw-{uuid.uuid4().hex}"
        reg = self.auth.Register(
            auth_pb2.RegisterRequest(username=username, password=password, channels=channels or {}),
            timeout=15,
        )
        login = self.auth.Login(auth_pb2.LoginRequest(username=username, password=password), timeout=15)
        if login.user_id != reg.user_id:
            raise AssertionError(f"login returned user {login.user_id}, registration {reg.user_id}")
        return TestUser(user_id=reg.user_id, username=username, password=password, token=login.access_token)

    def private_conversation(self, a: TestUser, b: TestUser, *, timeout: float = 10) -> str:
        """The PRIVATE conversation of ``a`` and ``b``, created by ``a``."""
        return self.conversations.CreateConversation(
            conversations_pb2.CreateConversationRequest(
                type=conversations_pb2.CONVERSATION_TYPE_PRIVATE, participant_ids=[b.user_id]
            ),
            metadata=a.md,
            timeout=timeout,
        ).conversation_id


@dataclass(kw_only=True)
class ApiClient(ApiStubs):
    """Synchronous stubs for one API server this harness started (``server``: its process, ports, logs)."""

    server: ApiProcess


def client_for(server: ApiProcess) -> ApiClient:
    """An ApiClient on a new channel to ``server`` (messages up to 8 MiB each way)."""
    options = [
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ]
    return ApiClient(server=server, channel=open_channel(server.target, server.ca_file, options))


def expect_status(code: grpc.StatusCode, call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    """Call ``call`` and return its RpcError, asserting that it failed with ``code``."""
    try:
        reply = call(*args, **kwargs)
    except grpc.RpcError as exc:
        assert exc.code() == code, f"expected {code.name}, got {exc.code().name}: {exc.details()}"
        return exc
    raise AssertionError(f"expected {code.name}, the call succeeded: {reply}")
