"""Cassandra calls (chat4all/cassandra.py): the one outage classifier, each driver exception type and its class; statement spans."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest
from cassandra import (
    AlreadyExists,
    AuthenticationFailed,
    CDCWriteFailure,
    ConfigurationException,
    ConsistencyLevel,
    CoordinationFailure,
    DriverException,
    FunctionFailure,
    InvalidRequest,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Timeout,
    Unauthorized,
    Unavailable,
    UnresolvableContactPoints,
    UnsupportedOperation,
    WriteFailure,
    WriteTimeout,
    protocol,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionBusy, ConnectionException, ConnectionShutdown, ProtocolError
from cassandra.pool import NoConnectionsAvailable

from api.errors import DependencyUnavailable
from api.errors import is_outage as api_is_outage
from chat4all.cassandra import is_outage


def _message(cls: type[protocol.ErrorMessage]) -> protocol.ErrorMessage:
    # The protocol's error messages as the driver raises them (ErrorMessage.to_exception
    # returns the message itself for these).
    return cls(code=cls.error_code, message=cls.summary, info=None)


ONE = ConsistencyLevel.ONE

OUTAGES: list[BaseException] = [
    NoHostAvailable("no host", {"127.0.0.1:9042": ConnectionRefusedError()}),
    OperationTimedOut("client timeout"),
    Unavailable("2 of 3 replicas down", consistency=ONE, required_replicas=1, alive_replicas=0),
    Timeout("timed out"),
    ReadTimeout(
        "read timed out", consistency=ONE, required_responses=1, received_responses=0, data_retrieved=False
    ),
    WriteTimeout(
        "write timed out", consistency=ONE, required_responses=1, received_responses=0, write_type=0
    ),
    CoordinationFailure(
        "replica failed", consistency=ONE, required_responses=1, received_responses=0, failures=1
    ),
    ReadFailure(
        "replica failed to read", consistency=ONE, required_responses=1, received_responses=0, failures=1
    ),
    WriteFailure(
        "replica failed to write", consistency=ONE, required_responses=1, received_responses=0, failures=1
    ),
    CDCWriteFailure("CDC space exhausted"),
    _message(protocol.OverloadedErrorMessage),
    _message(protocol.IsBootstrappingErrorMessage),
    _message(protocol.TruncateError),
    _message(protocol.UnavailableErrorMessage),
    _message(protocol.ReadTimeoutErrorMessage),
    _message(protocol.WriteTimeoutErrorMessage),
    _message(protocol.ReadFailureMessage),
    _message(protocol.WriteFailureMessage),
    _message(protocol.CDCWriteException),
    ConnectionException("connection lost"),
    ConnectionShutdown("connection closed"),
    ConnectionBusy("too many requests in flight"),
    NoConnectionsAvailable(),
    UnresolvableContactPoints("cassandra.invalid"),
    DriverException("connection pool lost"),  # the driver's bare DriverException
    ConnectionRefusedError(),
    ConnectionResetError(),
    TimeoutError(),
    socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution"),
    OSError(errno.EHOSTUNREACH, "no route to host"),
]

REFUSALS: list[BaseException] = [
    InvalidRequest("Key length of 102400 is longer than maximum of 65535"),  # too large
    InvalidRequest("Batch too large"),
    Unauthorized("no SELECT permission"),
    ConfigurationException("no such keyspace"),
    AlreadyExists(keyspace="chat4all", table="users"),
    AuthenticationFailed("bad credentials"),
    UnsupportedOperation("not supported by this protocol version"),
    FunctionFailure("udf raised", keyspace="chat4all", function="f", arg_types=[]),
    _message(protocol.FunctionFailureMessage),
    _message(protocol.SyntaxException),
    _message(protocol.InvalidRequestException),
    _message(protocol.UnauthorizedErrorMessage),
    _message(protocol.ConfigurationException),
    _message(protocol.PreparedQueryNotFound),
    _message(protocol.ServerError),
    _message(protocol.ProtocolException),
    _message(protocol.BadCredentials),
    ProtocolError("malformed frame"),
    ValueError("not a Cassandra error"),
    KeyError("x"),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages(exc: BaseException) -> None:
    assert is_outage(exc)
    assert api_is_outage(exc)  # the API answers UNAVAILABLE for the same ones


@pytest.mark.parametrize("exc", REFUSALS, ids=lambda e: type(e).__name__)
def test_refusals(exc: BaseException) -> None:
    assert not is_outage(exc)
    assert not api_is_outage(exc)  # INTERNAL: a client is not told to retry


def test_the_api_also_counts_its_own_dependencies() -> None:
    assert api_is_outage(DependencyUnavailable("Redis"))
    assert not is_outage(DependencyUnavailable("Redis"))  # not Cassandra's


async def test_a_statement_span_lasts_until_its_result_and_holds_no_values(traced) -> None:
    from opentelemetry import trace

    from chat4all import tracing
    from chat4all.cassandra import trace_statement

    loop = asyncio.get_running_loop()
    ok, refused, queued = loop.create_future(), loop.create_future(), loop.create_future()
    with tracing.tracer().start_as_current_span("router process", kind=trace.SpanKind.SERVER) as parent:
        trace_statement(ok, keyspace="chat4all", query="SELECT * FROM users WHERE user_id = %s")
        trace_statement(refused, keyspace="chat4all", query="INSERT INTO messages (a) VALUES (?)")
        trace_statement(queued, keyspace="chat4all", query="UPDATE messages SET s = ?", batched=True)
    assert [s.name for s in traced.get_finished_spans()] == ["router process"]  # nothing answered yet
    ok.set_result([])
    refused.set_exception(RuntimeError("refused"))
    queued.set_result(None)
    await asyncio.sleep(0)  # done callbacks run on the loop
    spans = {s.name: s for s in traced.get_finished_spans() if s.name != "router process"}
    assert set(spans) == {"cassandra SELECT", "cassandra INSERT", "cassandra UPDATE (batched)"}
    assert all(s.parent.span_id == parent.get_span_context().span_id for s in spans.values())
    assert spans["cassandra SELECT"].attributes["db.query.text"] == "SELECT * FROM users WHERE user_id = %s"
    assert spans["cassandra INSERT"].status.status_code == trace.StatusCode.ERROR
    # Outside any span (a background task of no call) there is no span.
    lone = loop.create_future()
    trace_statement(lone, keyspace="chat4all", query="SELECT now() FROM system.local")
    lone.set_result([])
    await asyncio.sleep(0)
    assert len(traced.get_finished_spans()) == 4  # the three and their parent
