"""The API's interceptors on an in-process grpc.aio server (no stack): errors become status codes, counted in metrics; a span per call."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from cassandra.cluster import NoHostAvailable
from opentelemetry import trace
from prometheus_client import REGISTRY

from api.auth_interceptor import AuthInterceptor, current_user_id
from api.errors import ApiError
from api.interceptors import ObservabilityInterceptor, TracingInterceptor
from api.tokens import TokenService
from chat4all import trace_headers, tracing
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


class TracedUsers(Users):
    """Users whose GetMe records the span current in the handler."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def GetMe(self, request, context):
        self.seen.append(trace.get_current_span())
        return await super().GetMe(request, context)


@pytest.fixture
async def traced_server(traced):
    tokens = TokenService(secret="k" * 40, issuer="chat4all", ttl_seconds=60, redis=FakeRedis())
    servicer = TracedUsers()
    srv = grpc.aio.server(
        interceptors=[
            TracingInterceptor(),
            ObservabilityInterceptor(),
            AuthInterceptor(tokens=tokens, timeout=1.0),
        ]
    )
    users_pb2_grpc.add_UserServiceServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    md = (("authorization", f"Bearer {tokens.issue(str(uuid.uuid4()))[0]}"),)
    yield users_pb2_grpc.UserServiceStub(channel), md, servicer, traced
    await channel.close()
    await srv.stop(0)


async def _finished(exporter: Any, name: str) -> Any:
    for _ in range(40):  # the span ends as the call's handler returns, just after the client's answer
        spans = [s for s in exporter.get_finished_spans() if s.name == name]
        if spans:
            return spans[0]
        await asyncio.sleep(0.025)
    raise AssertionError(f"no span {name}")


async def test_a_call_runs_in_a_server_span_that_continues_the_callers_trace(traced_server) -> None:
    users, md, servicer, exporter = traced_server
    with tracing.tracer().start_as_current_span("client", kind=trace.SpanKind.SERVER) as client:
        caller = trace_headers.inject()
    await users.GetMe(users_pb2.GetMeRequest(), metadata=md + tuple((k, v.decode()) for k, v in caller))
    span = await _finished(exporter, "chat4all.v1.UserService/GetMe")
    assert span.kind == trace.SpanKind.SERVER
    assert span.parent.span_id == client.get_span_context().span_id
    assert span.attributes["rpc.service"] == "chat4all.v1.UserService"
    assert span.attributes["rpc.method"] == "GetMe" and span.attributes["rpc.grpc.status_code"] == 0
    # The handler ran inside it: its calls and published records belong to it.
    assert servicer.seen[0].get_span_context().span_id == span.context.span_id


@pytest.mark.parametrize(
    ("channel", "code", "failed"),
    [("api-error", grpc.StatusCode.RESOURCE_EXHAUSTED, False), ("boom", grpc.StatusCode.INTERNAL, True)],
)
async def test_a_failed_call_records_its_status_code(traced_server, channel, code, failed) -> None:
    users, md, _servicer, exporter = traced_server
    with pytest.raises(grpc.aio.AioRpcError):
        await users.LinkChannel(users_pb2.LinkChannelRequest(channel=channel), metadata=md)
    span = await _finished(exporter, "chat4all.v1.UserService/LinkChannel")
    assert span.parent is None  # no caller context: the call starts the trace
    assert span.attributes["rpc.grpc.status_code"] == code.value[0]
    # Only the server's own failures mark the span failed; a refusal of the caller's request does not.
    assert (span.status.status_code == trace.StatusCode.ERROR) is failed


async def test_an_unsampled_call_runs_without_a_current_span(traced_server) -> None:
    users, md, servicer, exporter = traced_server
    # The caller decided "not sampled": the call keeps that decision and propagates nothing.
    caller = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),)
    await users.GetMe(users_pb2.GetMeRequest(), metadata=md + caller)
    (seen,) = servicer.seen
    assert not seen.get_span_context().is_valid  # nothing in the handler can start a child or inject
    await asyncio.sleep(0.05)
    assert exporter.get_finished_spans() == ()
