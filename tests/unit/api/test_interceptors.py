"""The API's error interceptor on an in-process grpc.aio server (no stack): errors become status codes, counted in metrics."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from cassandra.cluster import NoHostAvailable
from prometheus_client import REGISTRY

from api.auth_interceptor import AuthInterceptor, current_user_id
from api.errors import ApiError
from api.interceptors import ObservabilityInterceptor
from api.tokens import TokenService
from chat4all.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from tests.unit.api.fakes import FakeRedis


class Users(users_pb2_grpc.UserServiceServicer):
    async def GetMe(self, request, context):
        return users_pb2.GetMeResponse(user_id=current_user_id(context))

    async def LinkChannel(self, request, context):
        if request.channel == "api-error":
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", trailers=(("retry-after", "1.500"),)
            )
        if request.channel == "outage":
            raise NoHostAvailable("all hosts down", {})
        if request.channel == "abort":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "servicer said no")
        if request.channel == "slow":
            await asyncio.sleep(5)
        raise ValueError("secret internals")


class Auth(auth_pb2_grpc.AuthServiceServicer):
    async def Login(self, request, context):
        return auth_pb2.LoginResponse(user_id="public")


def count(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("chat4all_api_requests_total", {"method": method, "code": code}) or 0.0


@pytest.fixture
async def server():
    tokens = TokenService(secret="k" * 40, issuer="chat4all", ttl_seconds=60, redis=FakeRedis())
    srv = grpc.aio.server(
        interceptors=[ObservabilityInterceptor(), AuthInterceptor(tokens=tokens, timeout=1.0)]
    )
    users_pb2_grpc.add_UserServiceServicer_to_server(Users(), srv)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(Auth(), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    user_id = str(uuid.uuid4())
    md = (("authorization", f"Bearer {tokens.issue(user_id)[0]}"),)
    yield users_pb2_grpc.UserServiceStub(channel), auth_pb2_grpc.AuthServiceStub(channel), md, user_id
    await channel.close()
    await srv.stop(0)


@pytest.mark.parametrize(
    ("channel", "code", "details"),
    [
        ("api-error", grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down"),
        ("outage", grpc.StatusCode.UNAVAILABLE, "Cassandra is unavailable; try again"),
        ("abort", grpc.StatusCode.FAILED_PRECONDITION, "servicer said no"),
        ("boom", grpc.StatusCode.INTERNAL, "internal error; see the server log"),
    ],
)
async def test_errors_become_status_codes_and_are_counted(
    server, channel: str, code: grpc.StatusCode, details: str
) -> None:
    users, _auth, md, _ = server
    before = count("UserService/LinkChannel", code.name)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await users.LinkChannel(users_pb2.LinkChannelRequest(channel=channel), metadata=md)
    assert exc.value.code() == code and exc.value.details() == details
    if channel == "api-error":
        assert dict(exc.value.trailing_metadata())["retry-after"] == "1.500"
    for _ in range(20):  # a servicer's own abort() answers the client before the interceptor counts it
        if count("UserService/LinkChannel", code.name) == before + 1:
            break
        await asyncio.sleep(0.05)
    assert count("UserService/LinkChannel", code.name) == before + 1


async def test_deadline_exceeded_is_counted(server) -> None:
    users, _auth, md, _ = server
    before = count("UserService/LinkChannel", "DEADLINE_EXCEEDED")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await users.LinkChannel(users_pb2.LinkChannelRequest(channel="slow"), metadata=md, timeout=0.2)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(20):  # the server notices the expired deadline a moment later
        if count("UserService/LinkChannel", "DEADLINE_EXCEEDED") == before + 1:
            break
        await asyncio.sleep(0.05)
    assert count("UserService/LinkChannel", "DEADLINE_EXCEEDED") == before + 1
