"""The auth interceptor: it sets the caller and spares public methods."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from cassandra.cluster import NoHostAvailable

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


async def test_auth_interceptor_sets_the_caller_and_spares_public_methods(server) -> None:
    users, auth, md, user_id = server
    assert (await users.GetMe(users_pb2.GetMeRequest(), metadata=md)).user_id == user_id
    assert (await auth.Login(auth_pb2.LoginRequest())).user_id == "public"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await users.GetMe(users_pb2.GetMeRequest())
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
