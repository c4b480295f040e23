"""One message's trace in Jaeger, from the API call through every agent on its way to READ.

Sent through a real API and worker with every trace kept and read back from Jaeger's query API,
its spans cover the API call and every agent on the message's way, each under the one before it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from chat4all.settings import Settings
from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient
from cli.harness.isolation import IsolatedPipeline
from cli.harness.worker_process import FAST_RECEIPTS

pytestmark = pytest.mark.integration

TRACED = {"CHAT4ALL_TRACING_ENABLED": "true", "CHAT4ALL_TRACING_SAMPLE_RATIO": "1.0"}
SEND = "chat4all.v1.MessageService/SendMessage"


@pytest.fixture
def traced_platform(stack: Settings, api_factory: Any) -> Iterator[tuple[ApiClient, IsolatedPipeline]]:
    """A worker (all roles) and an API on topics of their own, tracing every call to the stack's Jaeger."""
    pipeline = IsolatedPipeline(stack, name="c4a-trace", env={**TRACED, **FAST_RECEIPTS})
    try:
        pipeline.worker().wait_ready()
        api = api_factory({**pipeline.env, "CHAT4ALL_APP_ID": pipeline.app_id})
        yield api, pipeline
    finally:
        pipeline.close()


def jaeger(settings: Settings, path: str, **query: str) -> Any:
    url = f"http://127.0.0.1:{settings.jaeger_query_port}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(check: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def trace_of(settings: Settings, message_id: str) -> dict[str, Any] | None:
    """The trace whose API span is tagged with ``message_id``, fetched whole by its id."""
    found = jaeger(
        settings,
        "/api/traces",
        service="chat4all-api",
        tags=json.dumps({"chat4all.message_id": message_id}),
        lookback="1h",
        limit="5",
    )["data"]
    if not found:
        return None
    (data,) = jaeger(settings, f"/api/traces/{found[0]['traceID']}")["data"]
    return data


def spans_by_name(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for span in data["spans"]:
        out.setdefault(span["operationName"], []).append(span)
    return out


def parent_id(span: dict[str, Any]) -> str | None:
    refs = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return refs[0] if refs else None


def tags(span_or_process: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span_or_process.get("tags", [])}


def complete(data: dict[str, Any] | None) -> bool:
    """Every hop of a message through to READ has reported its span (exports come in batches)."""
    if data is None:
        return False
    names = spans_by_name(data)
    want = [
        SEND,
        "publish messages",
        "router process",
        "whatsapp-connector process",
        "whatsapp-connector fire DELIVERED",
        "whatsapp-connector fire READ",
    ]
    return (
        all(n in names for n in want)
        and len(names.get("status-tracker process", [])) >= 2
        and len(names.get("gateway deliver", [])) >= 2
    )


def test_a_message_to_read_is_one_trace_through_every_agent(
    stack: Settings, traced_platform: tuple[ApiClient, IsolatedPipeline]
) -> None:
    api, _pipeline = traced_platform
    alice = api.register_and_login("alice")
    bob = api.register_and_login("bob", channels={"whatsapp": "+5511999990000"})
    cid = api.private_conversation(alice, bob)
    sent = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="trace me", channels=["whatsapp"]),
        metadata=alice.md,
        timeout=10,
    )

    def read() -> bool:
        page = api.messages.GetMessages(
            pb.GetMessagesRequest(conversation_id=cid, page_size=10), metadata=alice.md, timeout=10
        )
        return any(
            m.message_id == sent.message_id and m.status == pb.MESSAGE_STATUS_READ for m in page.messages
        )

    wait_for(read, "the message to be READ")

    def whole_trace() -> dict[str, Any] | None:
        data = trace_of(stack, sent.message_id)
        return data if complete(data) else None

    data = wait_for(whole_trace, "the whole trace")

    spans = {s["spanID"]: s for s in data["spans"]}
    names = spans_by_name(data)
    processes = data["processes"]

    def service(span: dict[str, Any]) -> str:
        return processes[span["processID"]]["serviceName"]

    def one(name: str) -> dict[str, Any]:
        (span,) = names[name]
        return span

    def child_of(span: dict[str, Any], parent: dict[str, Any]) -> None:
        assert parent_id(span) == parent["spanID"], (
            f"{span['operationName']} is not under {parent['operationName']}"
        )
        assert span["startTime"] >= parent["startTime"], f"{span['operationName']} starts before its parent"

    # The API's call starts the trace; its publish and everything after it hang below.
    call = one(SEND)
    assert parent_id(call) is None and service(call) == "chat4all-api"
    assert tags(call)["chat4all.message_id"] == sent.message_id
    assert tags(call)["rpc.grpc.status_code"] == 0
    publish = one("publish messages")
    child_of(publish, call)
    router = one("router process")
    child_of(router, publish)
    assert service(router) == "chat4all-worker"
    assert tags(processes[router["processID"]])["chat4all.worker.role"] == "all"
    assert tags(router)["chat4all.message_id"] == sent.message_id
    connector = one("whatsapp-connector process")
    child_of(connector, router)

    # Cassandra calls made for an event are children of its agent's span.
    def cassandra_under(agent: dict[str, Any]) -> list[str]:
        return [
            c["operationName"]
            for c in data["spans"]
            if parent_id(c) == agent["spanID"] and c["operationName"].startswith("cassandra ")
        ]

    assert cassandra_under(router), "the router's reads and its write of the message have no spans"

    for status in ("DELIVERED", "READ"):
        fire = one(f"whatsapp-connector fire {status}")
        child_of(fire, connector)
        (tracker,) = [s for s in names["status-tracker process"] if parent_id(s) == fire["spanID"]]
        child_of(tracker, fire)
        assert tags(tracker)["chat4all.status"] == status
        assert cassandra_under(tracker), f"the {status} update's Cassandra write has no span"
        # The tracker's notification to the sender reaches the gateway inside the API process.
        deliveries = [s for s in names["gateway deliver"] if parent_id(s) == tracker["spanID"]]
        assert deliveries, f"no gateway span under the {status} update"
        child_of(deliveries[0], tracker)
        assert service(deliveries[0]) == "chat4all-api"
    # Every span of the trace hangs from the API call: no hop started a trace of its own.
    for span in data["spans"]:
        chain, current = [], span
        while parent_id(current) is not None:
            chain.append(current["operationName"])
            current = spans[parent_id(current)]
        assert current is call, f"{span['operationName']} does not lead back to the API call: {chain}"
