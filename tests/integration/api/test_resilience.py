"""Rate limit, outages (Kafka or Cassandra unreachable), health and metrics of a real API server."""

from __future__ import annotations

import time
import urllib.request
import uuid

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2

from chat4all.cassandra import connect
from chat4all.settings import Settings
from chat4all.v1 import messages_pb2 as pb
from chat4all.v1 import users_pb2
from cli.harness.api_client import ApiClient, expect_status
from cli.harness.api_process import TEST_JWT_SECRET
from cli.harness.ports import free_port

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode


def private(api: ApiClient) -> tuple:
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    return alice, bob, api.private_conversation(alice, bob)


def test_rate_limit_trips_and_recovers(api_factory) -> None:
    limited = api_factory({"CHAT4ALL_RATE_LIMIT_PER_SECOND": "4", "CHAT4ALL_RATE_LIMIT_BURST": "3"})
    alice, bob, cid = private(limited)

    def send(user) -> pb.SendMessageResponse:
        return limited.messages.SendMessage(
            pb.SendMessageRequest(conversation_id=cid, content="hi"), metadata=user.md, timeout=10
        )

    for _ in range(3):
        send(alice)
    err = expect_status(CODE.RESOURCE_EXHAUSTED, send, alice)
    trailers = dict(err.trailing_metadata())
    wait = float(trailers["retry-after"])
    assert 0 < wait <= 0.25 + 0.01  # one token at 4/s
    assert f"retry in {trailers['retry-after']} s" in err.details()
    send(bob)  # per user: bob still has his burst
    time.sleep(wait + 0.05)
    send(alice)  # recovered
    expect_status(CODE.RESOURCE_EXHAUSTED, send, alice)


def _token_for(user_id: str) -> tuple[tuple[str, str], ...]:
    now = int(time.time())
    claims = {"sub": user_id, "iss": "chat4all", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    return (("authorization", "Bearer " + jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")),)


def test_kafka_down_gives_unavailable_within_deadline_and_nothing_half_written(
    api: ApiClient, api_factory, settings: Settings
) -> None:
    alice, _bob, cid = private(api)
    no_kafka = api_factory({"CHAT4ALL_KAFKA_PORT": str(free_port())}, wait_serving=False)
    key = f"cm-{uuid.uuid4()}"
    start = time.monotonic()
    err = expect_status(
        CODE.UNAVAILABLE,
        no_kafka.messages.SendMessage,
        pb.SendMessageRequest(conversation_id=cid, content="lost?", client_message_id=key),
        metadata=alice.md,
        timeout=3,
    )
    assert time.monotonic() - start < 3
    assert "Kafka" in err.details()
    # The idempotency claim was released: nothing half-written, and a retry on a healthy API works.
    session = connect(settings)
    try:
        row = session.execute(
            "SELECT message_id FROM client_messages WHERE sender_id = %s AND client_message_id = %s",
            (uuid.UUID(alice.user_id), key),
        ).one()
    finally:
        session.cluster.shutdown()
    assert row is None
    ok = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="lost?", client_message_id=key),
        metadata=alice.md,
        timeout=10,
    )
    assert ok.status == pb.MESSAGE_STATUS_SENT
    health = no_kafka.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_cassandra_down_gives_unavailable_within_deadline(api_factory) -> None:
    no_cassandra = api_factory({"CHAT4ALL_CASSANDRA_PORT": str(free_port())}, wait_serving=False)
    md = _token_for(str(uuid.uuid4()))  # tokens are checked without Cassandra
    for call, request in (
        (no_cassandra.users.GetMe, users_pb2.GetMeRequest()),
        (
            no_cassandra.messages.SendMessage,
            pb.SendMessageRequest(conversation_id=str(uuid.uuid4()), content="x"),
        ),
    ):
        start = time.monotonic()
        err = expect_status(CODE.UNAVAILABLE, call, request, metadata=md, timeout=2)
        assert time.monotonic() - start < 2
        assert "Cassandra" in err.details()


def test_redis_down_gives_unavailable_within_deadline(api_factory) -> None:
    no_redis = api_factory({"CHAT4ALL_REDIS_PORT": str(free_port())}, wait_serving=False)
    start = time.monotonic()
    err = expect_status(
        CODE.UNAVAILABLE,
        no_redis.users.GetMe,
        users_pb2.GetMeRequest(),
        metadata=_token_for(str(uuid.uuid4())),
        timeout=2,
    )
    assert time.monotonic() - start < 2
    assert "Redis" in err.details()


def test_health_reports_serving(api: ApiClient) -> None:
    for service in ("", "chat4all.v1.MessageService"):
        reply = api.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_metrics_count_requests_latency_and_errors(api: ApiClient) -> None:
    user = api.register_and_login("metrics")
    api.users.GetMe(users_pb2.GetMeRequest(), metadata=user.md, timeout=5)
    expect_status(CODE.UNAUTHENTICATED, api.users.GetMe, users_pb2.GetMeRequest(), timeout=5)
    body = (
        urllib.request.urlopen(f"http://127.0.0.1:{api.server.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    assert 'chat4all_api_requests_total{code="OK",method="UserService/GetMe"}' in body
    assert 'chat4all_api_errors_total{code="UNAUTHENTICATED",method="UserService/GetMe"}' in body
    assert 'chat4all_api_request_seconds_bucket{le="0.005",method="AuthService/Login"}' in body


def test_second_api_on_a_taken_port_refuses_to_start(api: ApiClient) -> None:
    import subprocess

    from cli.harness.api_process import chat4all_executable

    env = {**api.server.env, "CHAT4ALL_API_METRICS_PORT": str(free_port())}
    done = subprocess.run([chat4all_executable(), "api"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{api.server.port}" in done.stderr
    # The running server is untouched and still answers.
    assert (
        api.health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
