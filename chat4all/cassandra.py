"""Cassandra session factory, an asyncio bridge for the driver's futures, and the one outage classifier."""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from typing import Any

from cassandra import (
    ConsistencyLevel,
    DriverException,
    FunctionFailure,
    OperationTimedOut,
    RequestExecutionException,
    UnresolvableContactPoints,
)
from cassandra import protocol as _protocol
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.connection import ConnectionBusy, ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy
from cassandra.pool import NoConnectionsAvailable
from cassandra.query import BatchStatement, BoundStatement

from chat4all import tracing
from chat4all.settings import Settings

# The profile of every statement that is not a read (writes, batches, LWTs); reads run in
# EXEC_PROFILE_DEFAULT. ``aexecute`` picks one by the statement's kind.
WRITE_PROFILE = "chat4all-write"


# Errors that mean "Cassandra cannot answer right now": waiting helps. The driver raises two
# families: its own (cassandra.*) and, for some server errors, the protocol's error messages
# (cassandra.protocol.*, e.g. an overloaded coordinator when its retry policy gives up).
_OUTAGES: tuple[type[BaseException], ...] = (
    NoHostAvailable,  # every host failed or is down (wraps each host's error)
    OperationTimedOut,  # the client-side timeout
    RequestExecutionException,  # Unavailable, Read/WriteTimeout, Read/WriteFailure, CDCWriteFailure
    _protocol.RequestExecutionException,  # Overloaded, IsBootstrapping, Truncate, ... as messages
    ConnectionException,  # ConnectionShutdown and friends
    ConnectionBusy,
    NoConnectionsAvailable,
    UnresolvableContactPoints,  # DNS: the name may resolve again
    OSError,  # ConnectionError, TimeoutError (asyncio's too), unreachable networks
)

# Execution errors that retrying cannot fix: a user-defined function that raised.
_REFUSED_EXECUTIONS: tuple[type[BaseException], ...] = (FunctionFailure, _protocol.FunctionFailureMessage)


def is_outage(exc: BaseException) -> bool:
    """True if a Cassandra error means an outage (wait and retry; the API answers UNAVAILABLE).

    False if Cassandra refused the statement (invalid, syntax, unauthorized, too large: retrying
    cannot help) or the error is not Cassandra's. tests/unit/test_cassandra_outages.py lists each type.
    """
    if isinstance(exc, _OUTAGES):
        return not isinstance(exc, _REFUSED_EXECUTIONS)
    # The driver reports a lost connection pool as a bare DriverException; its subclasses that
    # are not listed above (RequestValidationException, AuthenticationFailed, ...) are refusals.
    return type(exc) is DriverException


def execution_profiles(settings: Settings) -> dict[Any, ExecutionProfile]:
    """The driver's execution profiles, one for reads and one for everything else.

    Reads run at ``cassandra_read_consistency``, everything else at ``cassandra_write_consistency``;
    both with ``cassandra_serial_consistency`` for LWTs.
    """
    serial = ConsistencyLevel.name_to_value[settings.cassandra_serial_consistency]

    def profile(level: str) -> ExecutionProfile:
        return ExecutionProfile(
            load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc),
            consistency_level=ConsistencyLevel.name_to_value[level],
            serial_consistency_level=serial,
        )

    return {
        EXEC_PROFILE_DEFAULT: profile(settings.cassandra_read_consistency),
        WRITE_PROFILE: profile(settings.cassandra_write_consistency),
    }


def cluster(settings: Settings, *, connect_timeout: float = 10.0) -> Cluster:
    """A driver Cluster for the configured contact point (not yet connected)."""
    return Cluster(
        contact_points=[settings.cassandra_host],
        port=settings.cassandra_port,
        # v4, not v5: the driver computes v5's CRC24 segment checksums in pure Python, about
        # 14% more client CPU per statement (bench/cassandra_drivers.py); nothing here needs v5.
        protocol_version=4,
        execution_profiles=execution_profiles(settings),
        connect_timeout=connect_timeout,
    )


def profile_for(query: Any) -> Any:
    """EXEC_PROFILE_DEFAULT for a read (a SELECT), WRITE_PROFILE for anything else."""
    if isinstance(query, BatchStatement):
        return WRITE_PROFILE
    if isinstance(query, BoundStatement):
        query = query.prepared_statement
    text = query if isinstance(query, str) else getattr(query, "query_string", "")
    return EXEC_PROFILE_DEFAULT if text.lstrip()[:6].upper() == "SELECT" else WRITE_PROFILE


def connect(settings: Settings, *, connect_timeout: float = 10.0) -> Session:
    """A session in the Chat4All keyspace. Blocking: call it through ``asyncio.to_thread`` in a loop."""
    return cluster(settings, connect_timeout=connect_timeout).connect(settings.cassandra_keyspace)


class _LoopBridge:
    """Hands driver results to one event loop in batches: one wake-up per batch, not per result.

    The driver completes requests on its own thread; ``call_soon_threadsafe`` per result
    wakes the loop through its self-pipe each time (``_write_to_self`` was a top frame of
    the worker's profile). Results queue here and the loop is woken only when the queue
    goes from empty to non-empty.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: collections.deque[tuple[asyncio.Future, Any, BaseException | None]] = (
            collections.deque()
        )
        self._lock = threading.Lock()
        self._scheduled = False

    def deliver(self, fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
        """Called on the driver's thread."""
        self._pending.append((fut, value, exc))
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody waits for the result any more
            pass

    def _drain(self) -> None:
        with self._lock:
            # Cleared before popping: a result queued from now on schedules another drain.
            self._scheduled = False
        pending = self._pending
        while pending:
            fut, value, exc = pending.popleft()
            _settle(fut, value, exc)


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBridge] = weakref.WeakKeyDictionary()


def _bridge(loop: asyncio.AbstractEventLoop) -> _LoopBridge:
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge


def aexecute(
    session: Session,
    query: Any,
    params: Any = None,
    *,
    timeout: float = 10.0,
    paging_state: bytes | None = None,
) -> asyncio.Future:
    """Run a statement without blocking the event loop, in the profile of its kind (``profile_for``).

    The result is the driver's ResultSet. With a ``fetch_size`` on the statement, the result holds
    one page (``current_rows``); pass its ``paging_state`` back for the next.
    """
    loop = asyncio.get_running_loop()
    bridge = _bridge(loop)
    result: asyncio.Future = loop.create_future()
    response: ResponseFuture = session.execute_async(
        query, params, timeout=timeout, execution_profile=profile_for(query), paging_state=paging_state
    )
    if tracing.ENABLED:
        trace_statement(result, keyspace=session.keyspace, query=query)

    def on_ok(_rows: Any) -> None:
        # The callback runs on the driver's thread: hand the whole ResultSet to the loop.
        bridge.deliver(result, response.result(), None)

    def on_err(exc: BaseException) -> None:
        bridge.deliver(result, None, exc)

    response.add_callbacks(on_ok, on_err)
    return result


def trace_statement(
    result: asyncio.Future, *, keyspace: str | None, query: Any, batched: bool = False
) -> None:
    """A CLIENT span of the statement under the current span (if one records), ended when ``result`` is done.

    ``batched``: a write queued for an unlogged batch (chat4all/cassandra_batch.py); its span lasts
    from the queueing to the batch's answer, in the trace of the event that wrote it.
    """
    if not tracing.recording():
        return  # before the statement's text is even looked at: most statements are not sampled
    text = statement_text(query)
    verb = text.split(None, 1)[0].upper() if text else "BATCH"
    span = tracing.start_client_span(
        f"cassandra {verb} (batched)" if batched else f"cassandra {verb}",
        {
            "db.system.name": "cassandra",
            "db.namespace": keyspace or "",
            # The statement's text only: bound values never reach a span.
            "db.query.text": text[:300],
        },
    )
    if span is None:
        return

    def end(done: asyncio.Future) -> None:
        if done.cancelled():
            span.set_attribute("chat4all.cancelled", True)
        elif (exc := done.exception()) is not None:
            tracing.fail(span, exc)
        span.end()

    result.add_done_callback(end)


def statement_text(query: Any) -> str:
    """The CQL of a statement (a batch: its first statement's, marked), for spans."""
    if isinstance(query, BatchStatement):
        entries = getattr(query, "_statements_and_parameters", None) or []
        return f"BATCH of {len(entries)}"
    if isinstance(query, BoundStatement):
        query = query.prepared_statement
    return query if isinstance(query, str) else getattr(query, "query_string", "")


def _settle(fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
