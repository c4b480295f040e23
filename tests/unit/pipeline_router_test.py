"""Router agent under faust's test_context: dedup, fan-out per recipient and channel, dead letters."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from tests.unit.pipeline_helpers import MemoryStore, new_id


@pytest.fixture(scope="module")
def router_env():
    from streams.app import app

    app.conf.datadir = tempfile.mkdtemp(prefix="c4a-unit-")
    os.makedirs(app.conf.datadir, exist_ok=True)
    import agents.router as router_module

    store = MemoryStore()

    async def provider(_settings):
        return store

    router_module.store_provider = provider
    return router_module, store


def _message(conversation_id: str, sender_id: str, **extra) -> bytes:
    body = {"message_id": new_id(), "conversation_id": conversation_id, "sender_id": sender_id, "ts_ms": 1_700_000_000_000,
            "content": "hi"}
    body.update(extra)
    return json.dumps(body).encode()


async def test_a_redelivered_message_is_routed_once(router_env):
    router_module, store = router_env
    alice, bob, conv = new_id(), new_id(), new_id()
    store.conversations[conv] = {alice, bob}
    raw = _message(conv, alice)
    outcomes = []
    async with router_module.router.test_context() as agent:
        original = router_module.route_message

        async def recording(key, value, *, store):
            outcomes.append(await original(key, value, store=store))
            return outcomes[-1]

        router_module.route_message = recording
        try:
            await agent.put(raw, key=conv.encode())
            await agent.put(raw, key=conv.encode())
        finally:
            router_module.route_message = original
    assert outcomes == ["routed", "duplicate"]
    mid = json.loads(raw)["message_id"]
    assert store.messages[mid]["writes"] == 1
    assert store.messages[mid]["receipt_keys"] == [f"{bob}:native"]
