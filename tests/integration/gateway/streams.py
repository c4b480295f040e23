"""Test helpers: open live streams (WebSocket, gRPC Subscribe) and collect what they get until they end."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chat4all.v1 import events_pb2, events_pb2_grpc
from cli.harness.api_client import ApiClient


def ws_url(api: ApiClient) -> str:
    return f"ws://127.0.0.1:{api.server.env['CHAT4ALL_WEBSOCKET_PORT']}/v1/events"


@dataclass
class Stream:
    """One live stream's events (message ids of message.new) and, once it ended, how and when."""

    new_messages: list[str] = field(default_factory=list)
    ended_at: float | None = None  # epoch seconds
    code: Any = None  # WebSocket close code or grpc.StatusCode
    reason: str = ""
    trailers: dict[str, str] = field(default_factory=dict)
    task: asyncio.Task | None = None

    async def ended(self, timeout: float) -> Stream:
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        return self

    async def got(self, message_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while message_id not in self.new_messages:
            assert time.monotonic() < deadline, (
                f"{message_id} never arrived (ended: {self.code} {self.reason})"
            )
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def open_ws(api: ApiClient, token: str, *, in_query: bool = False) -> Stream:
    if in_query:
        ws = await connect(f"{ws_url(api)}?access_token={token}")
    else:
        ws = await connect(ws_url(api), additional_headers={"Authorization": f"Bearer {token}"})
    stream = Stream()
    stream.task = asyncio.create_task(_read_ws(ws, stream))
    return stream


async def _read_ws(ws: ClientConnection, stream: Stream) -> None:
    try:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("kind") == "message.new":
                stream.new_messages.append(frame["message_id"])
    except ConnectionClosed:
        pass
    finally:
        stream.ended_at = time.time()
        stream.code, stream.reason = ws.close_code, ws.close_reason or ""
        await ws.close()


def open_subscribe(channel: grpc.aio.Channel, token: str) -> Stream:
    call = events_pb2_grpc.EventServiceStub(channel).Subscribe(
        events_pb2.SubscribeRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    stream = Stream()
    stream.task = asyncio.create_task(_read_grpc(call, stream))
    return stream


async def _read_grpc(call: Any, stream: Stream) -> None:
    try:
        async for reply in call:
            if reply.event.kind == events_pb2.EVENT_KIND_MESSAGE_NEW:
                stream.new_messages.append(reply.event.message_id)
        stream.code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        stream.code, stream.reason = exc.code(), exc.details() or ""
        stream.trailers = {k: str(v) for k, v in (exc.trailing_metadata() or ())}
    except asyncio.CancelledError:
        call.cancel()
        raise
    finally:
        stream.ended_at = time.time()
