"""A live stream ends with its token, never delivering a message sent after the revocation.

At once on RevokeToken (through any API process), within the heartbeat when the revocation
notice was missed, and at the token's expiry.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import jwt
import pytest

from chat4all.redis_client import redis_client
from chat4all.settings import Settings
from chat4all.v1 import auth_pb2, messages_pb2
from cli.harness.api_client import ApiClient, TestUser
from gateway.websocket import CLOSE_TOKEN_ENDED
from tests.integration.gateway.streams import Stream, open_subscribe, open_ws
from tests.integration.gateway.test_live_limits import close_all, wait_sessions

pytestmark = pytest.mark.integration

HEARTBEAT = 1.0


def _send(api: ApiClient, sender: TestUser, conversation_id: str, content: str) -> str:
    return api.messages.SendMessage(
        messages_pb2.SendMessageRequest(conversation_id=conversation_id, content=content),
        metadata=sender.md,
        timeout=10,
    ).message_id


def _login_again(api: ApiClient, user: TestUser) -> TestUser:
    login = api.auth.Login(auth_pb2.LoginRequest(username=user.username, password=user.password), timeout=15)
    return TestUser(
        user_id=user.user_id, username=user.username, password=user.password, token=login.access_token
    )


def _assert_ended_for_token(ws: Stream, sub: Stream, word: str) -> None:
    assert ws.code == CLOSE_TOKEN_ENDED, (ws.code, ws.reason)
    assert sub.code == grpc.StatusCode.UNAUTHENTICATED, (sub.code, sub.reason)
    for reason in (ws.reason, sub.reason):
        assert word in reason and "log in again and resubscribe" in reason, reason


async def test_revoking_a_token_ends_its_streams_and_nothing_sent_after_reaches_them(
    api_factory: Any, api: ApiClient, pipeline_worker: Any, stack: Settings
) -> None:
    gateway = api_factory({"CHAT4ALL_REALTIME_HEARTBEAT_SECONDS": str(HEARTBEAT)})
    alice, bob = gateway.register_and_login("alice"), gateway.register_and_login("bob")
    conversation_id = gateway.private_conversation(alice, bob)
    bob_again = _login_again(gateway, bob)  # another token of Bob's, not revoked: the control
    async with grpc.aio.insecure_channel(gateway.server.target) as channel:
        ws, sub = await open_ws(gateway, bob.token, in_query=True), open_subscribe(channel, bob.token)
        control = await open_ws(gateway, bob_again.token)
        try:
            await wait_sessions(stack, bob.user_id, 3)
            first = await asyncio.to_thread(_send, gateway, alice, conversation_id, "before")
            for stream in (ws, sub, control):
                await stream.got(first, timeout=30)

            # Revoked through another API process (the session's): the notice crosses processes.
            revoked_at = time.time()
            await asyncio.to_thread(
                api.auth.RevokeToken, auth_pb2.RevokeTokenRequest(), metadata=bob.md, timeout=10
            )
            after = await asyncio.to_thread(_send, gateway, alice, conversation_id, "after the revocation")

            await asyncio.gather(ws.ended(HEARTBEAT + 5), sub.ended(HEARTBEAT + 5))
            _assert_ended_for_token(ws, sub, "revoked")
            for stream in (ws, sub):
                assert stream.ended_at - revoked_at < HEARTBEAT, stream.ended_at - revoked_at
            await control.got(after, timeout=30)  # it was delivered live, to the other token only
            assert after not in ws.new_messages and after not in sub.new_messages
            assert not control.task.done()
            await wait_sessions(stack, bob.user_id, 1)
        finally:
            await close_all([ws, sub, control])


async def test_a_revocation_whose_notice_was_missed_ends_the_streams_within_the_heartbeat(
    api_factory: Any, stack: Settings
) -> None:
    gateway = api_factory({"CHAT4ALL_REALTIME_HEARTBEAT_SECONDS": str(HEARTBEAT)})
    bob = gateway.register_and_login("bob")
    jti = jwt.decode(bob.token, options={"verify_signature": False})["jti"]
    async with grpc.aio.insecure_channel(gateway.server.target) as channel:
        ws, sub = await open_ws(gateway, bob.token), open_subscribe(channel, bob.token)
        try:
            await wait_sessions(stack, bob.user_id, 2)
            # The revocation record alone, as if the pub/sub notice never reached this gateway.
            redis = redis_client(stack)
            try:
                await redis.set(f"chat4all:revoked:{jti}", "1", ex=60)
            finally:
                await redis.aclose()
            revoked_at = time.time()
            await asyncio.gather(ws.ended(HEARTBEAT + 5), sub.ended(HEARTBEAT + 5))
            _assert_ended_for_token(ws, sub, "revoked")
            for stream in (ws, sub):
                # One heartbeat, plus the token cache (1 s) the re-check may still answer from.
                assert stream.ended_at - revoked_at < 2 * HEARTBEAT + 1.5, stream.ended_at - revoked_at
        finally:
            await close_all([ws, sub])


async def test_a_stream_ends_at_its_tokens_expiry(api_factory: Any, stack: Settings) -> None:
    # The default heartbeat (20 s): the expiry is timed on its own, not found by a re-check.
    gateway = api_factory({"CHAT4ALL_JWT_TTL_SECONDS": "5"})
    bob = gateway.register_and_login("bob")
    exp = jwt.decode(bob.token, options={"verify_signature": False})["exp"]
    async with grpc.aio.insecure_channel(gateway.server.target) as channel:
        ws, sub = await open_ws(gateway, bob.token, in_query=True), open_subscribe(channel, bob.token)
        try:
            await wait_sessions(stack, bob.user_id, 2)
            assert time.time() < exp - 1, "too slow to open the streams before the token expired"
            await asyncio.gather(ws.ended(15), sub.ended(15))
            _assert_ended_for_token(ws, sub, "expired")
            for stream in (ws, sub):
                assert exp - 0.2 <= stream.ended_at < exp + 1.5, (stream.ended_at, exp)
            await wait_sessions(stack, bob.user_id, 0)
        finally:
            await close_all([ws, sub])
