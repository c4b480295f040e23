"""Admission control on a real API and Kafka: SendMessage is shed, then takes sends again.

It answers RESOURCE_EXHAUSTED with a retry-after trailer while the router group lags or too many
sends are in flight, and takes sends again once that clears.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import grpc
import pytest

from chat4all.settings import Settings
from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient, TestUser, expect_status
from cli.harness.isolation import IsolatedPipeline
from cli.harness.topics import seed_group_at_end

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode


def metric(api: ApiClient, name: str) -> float | None:
    body = (
        urllib.request.urlopen(f"http://127.0.0.1:{api.server.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def send(api: ApiClient, user: TestUser, cid: str, content: str = "hi") -> pb.SendMessageResponse:
    return api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content=content), metadata=user.md, timeout=10
    )


@pytest.fixture
def lagging_pipeline(settings: Settings):
    """Topics of its own and a consumer group with committed offsets but no worker.

    Every message published stays lag until the test commits the end offsets (the pipeline catching up).
    """
    pipeline = IsolatedPipeline(settings, name="c4a-adm")
    catch_up = lambda: seed_group_at_end(settings, pipeline.app_id, topics=[pipeline.topic("messages")])  # noqa: E731
    catch_up()
    yield pipeline.prefix, pipeline.app_id, catch_up
    pipeline.close()


def test_sends_are_shed_while_the_router_lags_and_taken_again_when_it_catches_up(
    api_factory, lagging_pipeline
) -> None:
    prefix, group, catch_up = lagging_pipeline
    api = api_factory(
        {
            "CHAT4ALL_TOPIC_PREFIX": prefix,
            "CHAT4ALL_APP_ID": group,
            "CHAT4ALL_API_ADMISSION_MAX_LAG": "5",
            "CHAT4ALL_API_ADMISSION_POLL_SECONDS": "0.2",
        }
    )
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    cid = api.private_conversation(alice, bob)
    wait_for(lambda: metric(api, "chat4all_api_pipeline_lag") == 0, what="the API's first lag reading")
    send(api, alice, cid, "first")
    wait_for(lambda: metric(api, "chat4all_api_pipeline_lag") == 1, what="a lag reading that counts it")
    accepted, err = 1, None
    for i in range(20):
        try:
            send(api, alice, cid, f"m{i}")
            accepted += 1
        except grpc.RpcError as exc:
            err = exc
            break
    assert err is not None and err.code() == CODE.RESOURCE_EXHAUSTED, err
    # The bound is 5; a message acknowledged during a lag reading may count twice for a moment.
    assert 3 <= accepted <= 5
    retry_after = dict(err.trailing_metadata())["retry-after"]
    assert 0.1 <= float(retry_after) <= 30
    assert "messages behind" in err.details() and f"retry in {retry_after} s" in err.details()
    # Shed before the rate limit: bob (same API, no lag of his own) is shed too, alice's tokens are intact.
    expect_status(CODE.RESOURCE_EXHAUSTED, send, api, bob, cid)
    assert metric(api, 'chat4all_api_shed_total{reason="lag"}') >= 2
    catch_up()
    wait_for(lambda: metric(api, "chat4all_api_pipeline_lag") == 0, what="the lag to clear")
    assert send(api, alice, cid, "after the backlog").status == pb.MESSAGE_STATUS_SENT


class Tarpit:
    """A 'Kafka' that accepts connections and never answers: publishes hang until their deadline."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_sends_beyond_the_in_flight_bound_are_shed_at_once(api_factory) -> None:
    tarpit = Tarpit()
    try:
        api = api_factory(
            {"CHAT4ALL_KAFKA_PORT": str(tarpit.port), "CHAT4ALL_API_MAX_INFLIGHT_SENDS": "2"},
            wait_serving=False,
        )
        alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
        cid = api.private_conversation(alice, bob)
        request = pb.SendMessageRequest(conversation_id=cid, content="stuck")
        stuck = [api.messages.SendMessage.future(request, metadata=alice.md, timeout=4) for _ in range(2)]
        time.sleep(0.5)  # both are waiting on Kafka now
        start = time.monotonic()
        err = expect_status(
            CODE.RESOURCE_EXHAUSTED, api.messages.SendMessage, request, metadata=bob.md, timeout=4
        )
        assert time.monotonic() - start < 1.0  # refused at once, not after queueing
        assert float(dict(err.trailing_metadata())["retry-after"]) > 0
        assert "busy" in err.details()
        for call in stuck:  # the ones in flight end with an answer before their deadline, never a timeout
            with pytest.raises(grpc.RpcError) as exc:
                call.result()
            assert exc.value.code() == CODE.UNAVAILABLE
    finally:
        tarpit.close()
