"""The realtime gateway: live events over WebSocket and the gRPC stream, sessions in Redis."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from typing import Any

import grpc
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chat4all.settings import Settings
from chat4all.v1 import events_pb2, events_pb2_grpc, messages_pb2
from cli.harness.api_client import ApiClient, TestUser
from tests.integration.gateway.presence import wait_presence

pytestmark = pytest.mark.integration


def _ws_url(api: ApiClient) -> str:
    return f"ws://127.0.0.1:{api.server.env['CHAT4ALL_WEBSOCKET_PORT']}/v1/events"


def _send(api: ApiClient, sender: TestUser, conversation_id: str, content: str) -> str:
    reply = api.messages.SendMessage(
        messages_pb2.SendMessageRequest(conversation_id=conversation_id, content=content),
        metadata=sender.md,
        timeout=10,
    )
    return reply.message_id


def _grpc_events(api: ApiClient, user: TestUser, *, seconds: float) -> tuple[queue.Queue, threading.Thread]:
    """Collect the user's EventService stream in a thread for ``seconds``."""
    out: queue.Queue = queue.Queue()
    stub = events_pb2_grpc.EventServiceStub(api.channel)
    started = threading.Event()

    def run() -> None:
        call = stub.Subscribe(events_pb2.SubscribeRequest(), metadata=user.md, timeout=seconds)
        started.set()
        try:
            for reply in call:
                out.put(reply.event)
        except grpc.RpcError as exc:
            out.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    return out, thread


async def test_websocket_gets_new_message_and_its_hand_off_is_the_native_delivered_receipt(
    api: ApiClient, pipeline_worker: Any, stack: Settings
) -> None:
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    conversation_id = api.private_conversation(alice, bob)
    alice_events, thread = _grpc_events(api, alice, seconds=40)

    async with connect(_ws_url(api), additional_headers={"Authorization": f"Bearer {bob.token}"}) as ws:
        # The session is in Redis while Bob is connected.
        await wait_presence(
            stack, bob.user_id, online=True, timeout=5, what="no Redis session for a connected client"
        )

        message_id = await asyncio.to_thread(_send, api, alice, conversation_id, "live hello")
        frame: dict[str, Any] = {}
        async with asyncio.timeout(30):
            while frame.get("message_id") != message_id:
                frame = json.loads(await ws.recv())
        assert frame["kind"] == "message.new"
        assert frame["content"] == "live hello"
        assert frame["sender_id"] == alice.user_id
        assert frame["conversation_id"] == conversation_id

        # Bob never called GetMessages: the hand-off alone makes his receipt DELIVERED,
        # which Alice (the sender) sees on her gRPC stream.
        statuses = []
        deadline = time.monotonic() + 30
        while "MESSAGE_STATUS_DELIVERED" not in statuses:
            assert time.monotonic() < deadline, f"no DELIVERED on the sender's stream: {statuses}"
            ev = await asyncio.to_thread(alice_events.get, True, max(0.1, deadline - time.monotonic()))
            assert not isinstance(ev, Exception), ev
            if ev.message_id == message_id and ev.kind == events_pb2.EVENT_KIND_MESSAGE_STATUS:
                assert ev.recipient_id == bob.user_id and ev.channel == "native"
                statuses.append(messages_pb2.MessageStatus.Name(ev.status))

    history = api.messages.GetMessages(
        messages_pb2.GetMessagesRequest(conversation_id=conversation_id), metadata=alice.md, timeout=10
    )
    (msg,) = [m for m in history.messages if m.message_id == message_id]
    assert msg.status == messages_pb2.MESSAGE_STATUS_DELIVERED

    # Closing the socket ends the session.
    await wait_presence(
        stack, bob.user_id, online=False, timeout=5, what="session left in Redis after the client closed"
    )


async def test_websocket_handshake_refuses_missing_forged_and_revoked_tokens(api: ApiClient) -> None:
    from chat4all.v1 import auth_pb2

    carol = api.register_and_login("carol")
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        with pytest.raises(InvalidStatus) as err:
            async with connect(_ws_url(api), additional_headers=headers):
                pass
        assert err.value.response.status_code == 401

    api.auth.RevokeToken(auth_pb2.RevokeTokenRequest(), metadata=carol.md, timeout=10)
    with pytest.raises(InvalidStatus) as err:
        async with connect(f"{_ws_url(api)}?access_token={carol.token}"):
            pass
    assert err.value.response.status_code == 401
    assert b"revoked" in err.value.response.body


def test_grpc_subscribe_requires_a_token(api: ApiClient) -> None:
    stub = events_pb2_grpc.EventServiceStub(api.channel)
    with pytest.raises(grpc.RpcError) as err:
        next(iter(stub.Subscribe(events_pb2.SubscribeRequest(), timeout=5)))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
