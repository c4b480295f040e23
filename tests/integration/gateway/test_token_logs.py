"""No access token in the API's log, DEBUG included, after real WebSocket and Subscribe connections."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chat4all.settings import Settings
from tests.integration.gateway.streams import open_subscribe, open_ws, ws_url
from tests.integration.gateway.test_live_limits import close_all, wait_sessions

pytestmark = pytest.mark.integration


async def test_debug_logs_of_live_connections_hold_no_token(api_factory: Any, stack: Settings) -> None:
    gateway = api_factory({"CHAT4ALL_LOG_LEVEL": "DEBUG"})
    bob = gateway.register_and_login("bob")
    forged = bob.token[:-4] + ("AAAA" if not bob.token.endswith("AAAA") else "BBBB")
    async with grpc.aio.insecure_channel(gateway.server.target) as channel:
        streams = [
            await open_ws(gateway, bob.token, in_query=True),
            await open_ws(gateway, bob.token),
            open_subscribe(channel, bob.token),
        ]
        await wait_sessions(stack, bob.user_id, 3)
        with pytest.raises(InvalidStatus):  # a refused handshake is logged too
            async with connect(f"{ws_url(gateway)}?access_token={forged}"):
                pass
        await close_all(streams)
    await wait_sessions(stack, bob.user_id, 0)
    gateway.server.stop()
    log = gateway.server.log()
    # DEBUG was on and the websockets library logged the request line and headers, redacted.
    assert "DEBUG websockets.server" in log
    assert "/v1/events?access_token=[redacted]" in log
    assert "Authorization: Bearer [redacted]" in log
    for secret in (bob.token, forged, bob.token.split(".")[2], forged.split(".")[2]):
        assert secret not in log
