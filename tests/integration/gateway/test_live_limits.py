"""Caps on live streams, a WebSocket handshake that fails after auth, and the gRPC connection policy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import grpc
import pytest

from chat4all.settings import Settings
from cli.harness.api_client import ApiClient
from cli.harness.ports import free_port
from gateway.websocket import CLOSE_TRY_LATER
from tests.integration.gateway.presence import presence
from tests.integration.gateway.streams import Stream, open_subscribe, open_ws

pytestmark = pytest.mark.integration


async def wait_sessions(settings: Settings, user_id: str, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(await presence(settings, user_id)) != count:
        assert time.monotonic() < deadline, (
            f"expected {count} live sessions, have {len(await presence(settings, user_id))}"
        )
        await asyncio.sleep(0.05)


async def close_all(streams: list[Stream]) -> None:
    await asyncio.gather(*(s.close() for s in streams))


async def test_one_user_holds_at_most_8_live_streams_websocket_and_subscribe_together(
    api: ApiClient, stack: Settings
) -> None:
    user, other = api.register_and_login("capped"), api.register_and_login("other")
    async with grpc.aio.insecure_channel(api.server.target) as channel:
        streams = [open_subscribe(channel, user.token) for _ in range(4)]
        streams += [await open_ws(api, user.token, in_query=i % 2 == 0) for i in range(4)]
        try:
            await wait_sessions(stack, user.user_id, 8)

            refused = await open_subscribe(channel, user.token).ended(10)
            assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
            assert "too many live streams" in refused.reason
            assert float(refused.trailers["retry-after"]) > 0

            refused_ws = await (await open_ws(api, user.token)).ended(10)
            assert refused_ws.code == CLOSE_TRY_LATER, refused_ws
            assert "too many live streams" in refused_ws.reason
            # Refused before taking a session: still 8, and the 8 are still open.
            assert len(await presence(stack, user.user_id)) == 8
            assert all(not s.task.done() for s in streams)

            # Another user is not affected.
            theirs = await open_ws(api, other.token)
            streams.append(theirs)
            await wait_sessions(stack, other.user_id, 1)

            # Closing one frees its slot.
            await streams[0].close()
            await wait_sessions(stack, user.user_id, 7)
            streams.append(open_subscribe(channel, user.token))
            await wait_sessions(stack, user.user_id, 8)
        finally:
            await close_all(streams)
    await wait_sessions(stack, user.user_id, 0)


async def test_a_process_holds_at_most_its_total_of_live_streams(api_factory, stack: Settings) -> None:
    api = api_factory({"CHAT4ALL_REALTIME_MAX_STREAMS": "2"})
    users = [api.register_and_login("total") for _ in range(3)]
    async with grpc.aio.insecure_channel(api.server.target) as channel:
        streams = [await open_ws(api, users[0].token), open_subscribe(channel, users[1].token)]
        try:
            await wait_sessions(stack, users[1].user_id, 1)
            await wait_sessions(stack, users[0].user_id, 1)
            refused = await open_subscribe(channel, users[2].token).ended(10)
            assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "retry later" in refused.reason
            refused_ws = await (await open_ws(api, users[2].token)).ended(10)
            assert refused_ws.code == CLOSE_TRY_LATER
            assert len(await presence(stack, users[2].user_id)) == 0
        finally:
            await close_all(streams)


def _raw_handshake(port: int, headers: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        data = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := s.recv(4096):
                data += chunk
        return data


async def test_websocket_handshakes_failing_after_auth_leave_nothing(api: ApiClient, stack: Settings) -> None:
    user = api.register_and_login("badshake")
    port = int(api.server.env["CHAT4ALL_WEBSOCKET_PORT"])
    bearer = f"Authorization: Bearer {user.token}\r\n"
    bad = [
        bearer,  # no Upgrade at all: 426
        bearer + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",  # no key: 400
        bearer
        + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 8\r\n",  # unsupported version: 426
    ]
    for i in range(12):  # more than the per-user cap: a slot kept by any of them would show below
        reply = await asyncio.to_thread(_raw_handshake, port, bad[i % len(bad)])
        status = reply.split(b"\r\n", 1)[0]
        assert b" 101 " not in status and (b" 400 " in status or b" 426 " in status), reply[:200]
    assert len(await presence(stack, user.user_id)) == 0
    # All 8 slots are free.
    streams = [await open_ws(api, user.token) for _ in range(8)]
    try:
        await wait_sessions(stack, user.user_id, 8)
        assert all(not s.task.done() for s in streams)
    finally:
        await close_all(streams)


async def test_concurrent_streams_per_connection_are_bounded(api_factory) -> None:
    api = api_factory({"CHAT4ALL_API_MAX_CONCURRENT_STREAMS": "2"})
    user = api.register_and_login("h2")
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(api.server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # the connection is up
        streams = [open_subscribe(channel, user.token) for _ in range(2)]
        try:
            await asyncio.sleep(0.5)
            # A third call on the same connection waits for a free stream (the client queues it).
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=1.5)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await streams[0].close()
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        finally:
            await close_all(streams)


class _FreezableProxy:
    """A TCP proxy to the API that can stop forwarding (a peer that vanished without a FIN)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.frozen = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> _FreezableProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self._writers:
            w.close()
        assert self._server is not None
        self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not self.frozen.is_set():
            data = await reader.read(65536)
            if not data:
                return
            if self.frozen.is_set():
                return  # swallowed: neither side hears from the other again
            writer.write(data)
            await writer.drain()
        await asyncio.Event().wait()


async def test_keepalive_ends_the_stream_of_a_client_that_vanished(api_factory, stack: Settings) -> None:
    api = api_factory({"CHAT4ALL_API_KEEPALIVE_SECONDS": "1", "CHAT4ALL_API_KEEPALIVE_TIMEOUT_SECONDS": "1"})
    user = api.register_and_login("vanish")
    async with _FreezableProxy(api.server.port) as proxy:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            stream = open_subscribe(channel, user.token)
            try:
                await wait_sessions(stack, user.user_id, 1)
                await asyncio.sleep(2.5)  # keepalive pings answered through the proxy: still open
                assert len(await presence(stack, user.user_id)) == 1
                proxy.frozen.set()
                started = time.monotonic()
                # The API's ping goes unanswered: it drops the connection, the stream and its session.
                await wait_sessions(stack, user.user_id, 0, timeout=15)
                assert time.monotonic() - started < 10
            finally:
                await stream.close()
