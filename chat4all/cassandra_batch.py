"""Token-aware write batching: writes issued close together go to Cassandra as unlogged batches, one per replica set.

Why: every request costs the driver (a future, a timeout timer, a thread hand-off) and the
server (native-transport parsing and dispatch) far more than the mutation it carries; the
worker issues thousands of small upserts a second. Grouping the writes bound for the same
replicas into one unlogged batch is what the Spark Cassandra Connector does by default
(``batch.grouping.key = replica_set``): each batch goes to a coordinator that owns every
partition in it, so no coordinator fans writes out to other nodes. A batch is not atomic
and need not be: every write here is an idempotent upsert with its own timestamp.

A write waits at most ``linger`` seconds (default 10 ms) for company; a batch holds at most
``max_statements`` writes (default 32) and about ``max_bytes`` of values (default 24 KiB,
under Cassandra's ``batch_size_fail_threshold`` of 50 KiB).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from chat4all import tracing
from chat4all.cassandra import trace_statement

logger = logging.getLogger(__name__)

# Runs one statement (a batch or a single write) until it succeeds or Cassandra refuses it;
# waiting out outages is its business.
Runner = Callable[[Any], Awaitable[Any]]


class _BatchWarnings(logging.Filter):
    """Drops the server's per-batch size warnings (the driver logs one per response), telling the operator once.

    A cluster left at Cassandra's default thresholds (5 KiB, 10 partitions) warns on nearly
    every batch these writes make; thousands of log lines a minute cost the worker real CPU.
    """

    _MARKERS = ("Unlogged batch covering", "exceeding specified threshold")

    def __init__(self) -> None:
        super().__init__()
        self._told = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not any(marker in message for marker in self._MARKERS):
            return True
        if not self._told:
            self._told = True
            logger.warning(
                "Cassandra warns about the worker's write batches (%s); raise batch_size_warn_threshold and "
                "unlogged_batch_across_partitions_warn_threshold (docs/pipeline.md). Further such warnings are not logged.",
                message[:200],
            )
        return False


_batch_warnings = _BatchWarnings()


def _value_bytes(bound: BoundStatement) -> int:
    return sum(len(v) for v in bound.values if isinstance(v, bytes | bytearray))


class WriteBatcher:
    """Collects bound writes per replica set and sends them as unlogged batches through ``run``.

    If Cassandra refuses a batch (not an outage: ``run`` waits those out), its writes are sent
    again one by one so that only the write at fault fails.
    """

    def __init__(
        self,
        *,
        session: Session,
        run: Runner,
        linger: float = 0.010,
        max_statements: int = 32,
        max_bytes: int = 24 * 1024,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._session = session
        self._run = run
        self._linger = linger
        self._max_statements = max_statements
        self._max_bytes = max_bytes
        self._pending: dict[Any, list[tuple[BoundStatement, asyncio.Future]]] = {}
        self._sizes: dict[Any, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._on_batch = on_batch
        protocol_logger = logging.getLogger("cassandra.protocol")
        if _batch_warnings not in protocol_logger.filters:
            protocol_logger.addFilter(_batch_warnings)

    def _replicas(self, bound: BoundStatement) -> Any:
        key = bound.routing_key
        if key is None:
            return None
        try:
            replicas = self._session.cluster.metadata.get_replicas(bound.keyspace, key)
        except Exception:  # no token map yet: one group
            return None
        return tuple(sorted(str(h.endpoint) for h in replicas)) or None

    def write(self, prepared: PreparedStatement, params: Any) -> asyncio.Future:
        """Queue a write; the future resolves when its batch (or, after a refusal, the write alone) is applied."""
        bound = prepared.bind(params)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if tracing.ENABLED:
            trace_statement(fut, keyspace=bound.keyspace, query=bound, batched=True)
        group = self._replicas(bound)
        queue = self._pending.setdefault(group, [])
        queue.append((bound, fut))
        size = self._sizes.get(group, 0) + _value_bytes(bound)
        self._sizes[group] = size
        if len(queue) >= self._max_statements or size >= self._max_bytes:
            self._send(group)
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self._send_all)
        return fut

    def _send_all(self) -> None:
        self._timer = None
        for group in list(self._pending):
            self._send(group)

    def _send(self, group: Any) -> None:
        writes = self._pending.pop(group, [])
        self._sizes.pop(group, None)
        if not writes:
            return
        task = asyncio.ensure_future(self._apply(writes))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, writes: list[tuple[BoundStatement, asyncio.Future]]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(writes))
        if len(writes) == 1:
            await self._apply_one(*writes[0])
            return
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for bound, _ in writes:
            batch.add(bound)
        try:
            await self._run(batch)
        except Exception as exc:
            logger.info(
                "Cassandra refused a batch of %d writes (%s); sending them one by one", len(writes), exc
            )
            await asyncio.gather(*(self._apply_one(bound, fut) for bound, fut in writes))
            return
        for _, fut in writes:
            if not fut.done():
                fut.set_result(None)

    async def _apply_one(self, bound: BoundStatement, fut: asyncio.Future) -> None:
        try:
            await self._run(bound)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result(None)
