"""Connector agents, one per channel: send through the channel's connector, then schedule DELIVERED/READ durably."""

from __future__ import annotations

import logging
from typing import Any

from faust.web import Request, Response, View
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from chat4all import trace_headers, tracing
from chat4all.settings import Settings
from chat4all.wire import (
    InvalidRecord,
    Kind,
    Notification,
    OutboundEvent,
    Status,
    StatusUpdate,
    Tick,
    decode,
    encode,
    is_tick,
)
from connectors.base import BaseConnector, ConnectorConfig
from connectors.breaker import BreakerState
from connectors.faults import FaultInjector
from connectors.native import NativeConnector
from connectors.registry import CONNECTORS
from connectors.simulators import SimulatedNetworkConnector
from streams import event_spans, metrics, operator_auth
from streams.context import AgentContext
from streams.inflight import InFlight, awaiting
from tables.durable_schedule import DurableSchedule
from tables.scheduled_receipts import (
    ScheduledReceipt,
    read_scheduled_receipt,
    scheduled_receipt,
    scheduled_receipts_table,
)

logger = logging.getLogger(__name__)

_NEVER = 2**62


def connector_config(settings: Settings) -> ConnectorConfig:
    """Retry, breaker and simulated-delay knobs of every connector, from settings."""
    first, largest = settings.connector_backoff_ms
    return ConnectorConfig(
        max_attempts=settings.connector_max_attempts,
        backoff_first=first / 1000,
        backoff_largest=largest / 1000,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_reset_timeout=settings.breaker_reset_timeout,
        delivered_delay_ms=settings.delivered_delay_ms,
        read_delay_ms=settings.read_delay_ms,
    )


def _on_attempt(channel: str, outcome: str) -> None:
    metrics.connector_sends.labels(channel, outcome).inc()


def _on_breaker_change(channel: str, state: BreakerState) -> None:
    metrics.breaker_state.labels(channel).set(state.value)


class ChannelWorker:
    """One channel's connector agent, its schedule table and the partitions' next-due hints for the tick timer."""

    def __init__(self, ctx: AgentContext, *, channel: str, faults: FaultInjector) -> None:
        self.ctx = ctx
        self.channel = channel
        self.topic_name = ctx.topics.outbound[channel].get_topic_name()
        # Every series of this channel exists from the start (at 0): a query or an alert on it
        # sees "nothing happened" instead of no data.
        self.deliveries = {
            o: metrics.connector_deliveries.labels(channel, o) for o in metrics.DELIVERY_OUTCOMES
        }
        metrics.breaker_state.labels(channel).set(0)
        for outcome in ("sent", "error"):
            metrics.connector_sends.labels(channel, outcome)
        self.connector = self._make_connector(faults)
        self.scheduled = isinstance(self.connector, SimulatedNetworkConnector)
        self.table = scheduled_receipts_table(ctx.app, ctx.settings, channel) if self.scheduled else None
        # partition -> when its schedule next needs a tick (ms). In memory only: a newly
        # owned partition is ticked at once and its real hint comes back from the table.
        self.next_due: dict[int, int] = {}
        self.last_fired: dict[int, int] = {}
        self.pending_buckets: dict[int, int] = {}
        # partition -> bucket -> the broker acks of the receipts it fired (in memory only).
        self.fired: dict[int, dict[int, list[Any]]] = {}
        # partition -> its schedule's sorted bucket numbers (in memory only, see tables/durable_schedule.py).
        self.indexes: dict[int, list[int]] = {}
        self.owned: set[int] = set()
        self.tick_ms = ctx.settings.schedule_tick_ms
        self.inflight = InFlight(
            name=f"{channel}-connector",
            limit=ctx.settings.agent_max_in_flight,
            on_done=metrics.agent_observer(f"{channel}-connector"),
        )
        self.agent = ctx.app.agent(ctx.topics.outbound[channel], name=f"{channel}-connector")(self._consume)

    def _make_connector(self, faults: FaultInjector) -> BaseConnector:
        cls = CONNECTORS[self.channel]
        common: dict[str, Any] = {
            "config": connector_config(self.ctx.settings),
            "on_attempt": _on_attempt,
            "on_breaker_change": _on_breaker_change,
            "on_call_seconds": metrics.provider_call_seconds.labels(self.channel).observe,
        }
        if issubclass(cls, NativeConnector):
            # Failure injection is for the simulated providers only.
            return cls(publish=self._publish_native, faults=FaultInjector(), **common)
        return cls(faults=faults, **common)

    async def _publish_native(self, event: OutboundEvent) -> None:
        note = Notification(
            user_id=event.recipient_id,
            kind=Kind.MESSAGE_NEW,
            message_id=event.message_id,
            conversation_id=event.conversation_id,
            at_ms=self.ctx.clock(),
            sender_id=event.sender_id,
            content=event.content,
            channel=event.channel,
            ts_ms=event.ts_ms,
            receipt_keys=event.receipt_keys,
        )
        await self.ctx.sender.send(
            self.ctx.topics.notifications, key=event.recipient_id.encode(), value=encode(note)
        )

    async def _consume(self, stream: Any) -> None:
        agent = f"{self.channel}-connector"
        async for event in stream.noack().events():
            if tracing.ENABLED:
                with event_spans.consumed(event, agent=agent):  # ticks carry no context: no span
                    await self.handle(event)
            else:
                await self.handle(event)

    def schedule(self, partition: int) -> DurableSchedule:
        """The durable schedule of ``partition``, keeping its bucket index in memory between calls."""
        assert self.table is not None
        # Keys namespaced by partition: see tables/durable_schedule.py for why they must not repeat.
        schedule = DurableSchedule(
            table=self.table, namespace=f"p{partition}:", index=self.indexes.get(partition)
        )
        self.indexes[partition] = schedule.index
        return schedule

    def forget(self) -> None:
        """Drop what memory holds about the schedule (a rebalance: the table is the truth again).

        The bucket indexes are rebuilt from the table on next use; buckets fired but not yet
        acked fire again from the table (duplicates, never losses), since another worker may
        have owned their partition meanwhile.
        """
        self.indexes.clear()
        self.fired.clear()
        self.next_due.clear()

    async def handle(self, event: Any) -> None:
        """Process one event of `<channel>-outbound` in its partition's event context."""
        partition, key, raw = event.message.partition, event.key, event.value
        inflight = self.inflight
        if is_tick(raw):
            self.fire_due(partition)
            await inflight.submit(event)
            return
        try:
            outbound = decode(
                OutboundEvent, raw, uuid_fields=("message_id", "conversation_id", "recipient_id")
            )
        except InvalidRecord as exc:
            self.deliveries["invalid"].inc()
            fut = await self.ctx.dead_letters.send(
                source=f"{self.channel}-connector",
                topic=self.topic_name,
                key=key,
                payload=raw or b"",
                reason=str(exc),
            )
            await inflight.submit(event, then=awaiting([fut]))
            return
        if tracing.ENABLED:
            event_spans.annotate(message_id=outbound.message_id, recipient_id=outbound.recipient_id)
        result = await self.connector.deliver(outbound)
        # No attempt at all: the record could never be sent on this channel (no handle...).
        self.deliveries["sent" if result.sent else "failed" if result.attempts else "invalid"].inc()
        if result.sent:
            if self.scheduled:
                now = self.ctx.clock()
                # The receipts fired later continue this span's trace (None: tracing off).
                tp = trace_headers.traceparent() if tracing.ENABLED else None
                entries = [
                    _scheduled(outbound, s.status, s.due_ms, traceparent=tp)
                    for s in self.connector.after_send(outbound, now_ms=now)
                ]
                self.schedule(partition).add_many(entries)
                due = min(e["due"] for e in entries)
                self.next_due[partition] = min(self.next_due.get(partition, _NEVER), due)
                # Under load, fire what is due while we are in this partition's context anyway:
                # that saves the tick records (a hop each) the timer would otherwise send.
                if self._fire_wanted(partition, now):
                    self.fire_due(partition)
            # The schedule entry is a table write: its changelog record is flushed before
            # this offset can be committed, so the event is done.
            await inflight.submit(event)
            return
        # Given up on: the recipient's receipt becomes FAILED and the record goes to dead-letters.
        failed = StatusUpdate(
            message_id=outbound.message_id,
            conversation_id=outbound.conversation_id,
            ts_ms=outbound.ts_ms,
            recipient_id=outbound.recipient_id,
            channel=self.channel,
            status=Status.FAILED,
            at_ms=self.ctx.clock(),
            receipt_keys=outbound.receipt_keys,
            reason=result.reason,
            source=self.channel,
            sender_id=outbound.sender_id,
        )
        pending = [
            await self.ctx.sender.send(
                self.ctx.topics.status_updates, key=outbound.message_id.encode(), value=encode(failed)
            )
        ]
        pending.append(
            await self.ctx.dead_letters.send(
                source=f"{self.channel}-connector",
                topic=self.topic_name,
                key=key,
                payload=raw or b"",
                reason=result.reason or "failed",
                attempts=result.attempts,
                message_id=outbound.message_id,
                conversation_id=outbound.conversation_id,
            )
        )
        await inflight.submit(event, then=awaiting(pending))

    def _fire_wanted(self, partition: int, now: int) -> bool:
        return (
            self.next_due.get(partition, 0) <= now and now - self.last_fired.get(partition, 0) >= self.tick_ms
        )

    def fire_due(self, partition: int) -> None:
        """Publish every due receipt of this partition, schedule READ after DELIVERED; forget buckets once acked.

        Runs in the partition's event context (it writes the schedule table) and never
        waits: a fired bucket stays in the table, marked fired in memory, until the broker
        has acked every receipt it published, and is removed by a later firing. After a
        crash the bucket is still in the table and fires again: a duplicate receipt, which
        the status tracker counts and ignores, never a lost one.
        """
        schedule = self.schedule(partition)
        now = self.ctx.clock()
        self.last_fired[partition] = now
        fired = self.fired.setdefault(partition, {})
        # Buckets whose receipts are all on the broker can go; a failed send fires again.
        done = []
        for bucket, futures in list(fired.items()):
            if all(f.done() for f in futures):
                del fired[bucket]
                if any(f.cancelled() or f.exception() is not None for f in futures):
                    logger.warning(
                        "%s: receipts of bucket %d were not acked; firing them again", self.channel, bucket
                    )
                else:
                    done.append(bucket)
        schedule.remove(done)
        follow_ups: list[ScheduledReceipt] = []
        for bucket, entries in schedule.due(now):
            if bucket in fired:
                continue
            records = []
            headers: list[trace_headers.Headers | None] = []
            for stored in entries:
                e = read_scheduled_receipt(stored)  # entries of earlier versions are still in the table
                update = StatusUpdate(
                    message_id=e["mid"],
                    conversation_id=e["cid"],
                    ts_ms=e["ts"],
                    recipient_id=e["rid"],
                    channel=self.channel,
                    status=e["st"],
                    at_ms=now,
                    receipt_keys=e["k"],
                    source=self.channel,
                    sender_id=e["sid"],
                )
                records.append((e["mid"].encode(), encode(update)))
                headers.append(self._fired_span(e, now) if tracing.ENABLED else None)
                if e["st"] == Status.DELIVERED:
                    assert isinstance(self.connector, SimulatedNetworkConnector)
                    follow_ups.append({**e, "st": Status.READ, "due": now + self.connector.read_delay_ms()})
            fired[bucket] = self.ctx.sender.send_soon(
                self.ctx.topics.status_updates, records, headers=headers
            )
        schedule.add_many(follow_ups)
        waiting = schedule.next_due_ms(skip=fired.keys())
        if fired:
            # Come back soon to forget the fired buckets once their acks are in.
            waiting = min(waiting or _NEVER, now + self.tick_ms)
        self.next_due[partition] = _NEVER if waiting is None else waiting
        self.pending_buckets[partition] = schedule.pending()
        metrics.scheduled_pending.labels(self.channel).set(
            sum(n for p, n in self.pending_buckets.items() if p in self.owned)
        )

    def _fired_span(self, entry: ScheduledReceipt, now: int) -> trace_headers.Headers | None:
        """A PRODUCER span for a receipt fired from the schedule, under the span that scheduled it; its record's headers.

        An entry without a traceparent (tracing was off, or a version 2 entry) fires without one.
        """
        parent = trace_headers.from_traceparent(entry.get("tp"))
        if parent is None:
            return None
        span = tracing.tracer().start_span(
            f"{self.channel}-connector fire {entry['st']}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "chat4all.message_id": entry["mid"],
                "chat4all.recipient_id": entry["rid"],
                "chat4all.status": entry["st"],
                "chat4all.scheduled_due_ms": entry["due"],
                "chat4all.fired_ms": now,
            },
        )
        try:
            return trace_headers.inject(trace.set_span_in_context(span))
        finally:
            span.end()

    async def send_ticks(self, assignment: set[Any], now: int) -> None:
        """Tick every owned partition whose schedule is due (or unknown since it was assigned)."""
        owned = {tp.partition for tp in assignment if tp.topic == self.topic_name}
        for partition in owned - self.owned:
            self.next_due[partition] = 0
        self.owned = owned
        topic = self.ctx.topics.outbound[self.channel]
        for partition in owned:
            if self._fire_wanted(partition, now):
                # Until the agent handles this tick and sets the real hint, do not tick again.
                self.next_due[partition] = now + 2000
                await topic.send(key=None, value=encode(Tick(at_ms=now)), partition=partition)


def _scheduled(
    event: OutboundEvent, status: str, due_ms: int, *, traceparent: str | None
) -> ScheduledReceipt:
    return scheduled_receipt(
        due_ms=due_ms,
        status=status,
        message_id=event.message_id,
        conversation_id=event.conversation_id,
        ts_ms=event.ts_ms,
        recipient_id=event.recipient_id,
        sender_id=event.sender_id,
        receipt_keys=event.receipt_keys,
        traceparent=traceparent,
    )


class Connectors:
    """The connectors role: one ChannelWorker per channel, the schedule tick timer, /connectors pages."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        # One injector for the simulated providers, changed at run time through /connectors/faults.
        self.faults = FaultInjector(
            error_rate=settings.connector_send_error_rate, outage=settings.connector_outage
        )
        self.channels: dict[str, ChannelWorker] = {
            c: ChannelWorker(ctx, channel=c, faults=self.faults)
            for c in CONNECTORS
            if c in ctx.topics.outbound
        }
        app = ctx.app
        app.on_partitions_revoked.connect(self._forget)
        app.on_partitions_assigned.connect(self._forget)
        app.timer(interval=settings.schedule_tick_ms / 1000)(self.schedule_ticks)
        self._install_pages()

    async def _forget(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        for worker in self.channels.values():
            worker.forget()

    async def schedule_ticks(self) -> None:
        """Punctuation: a timer may not write tables, so it asks the agent (via a tick record) to fire due entries."""
        try:
            assignment = self.ctx.app.consumer.assignment()
        except Exception:  # consumer not started yet
            return
        now = self.ctx.clock()
        for worker in self.channels.values():
            if worker.scheduled:
                await worker.send_ticks(assignment, now)

    def state(self) -> dict[str, Any]:
        """Breaker state (and its last transitions) per channel and the faults in force (the /connectors page)."""
        return {
            "faults": {"error_rate": self.faults.error_rate, "outage": self.faults.outage},
            "channels": {
                c: {
                    "breaker": w.connector.breaker.state.name,
                    "consecutive_failures": w.connector.breaker.consecutive_failures,
                    "opened_count": w.connector.breaker.opened_count,
                    "transitions": [
                        {"state": state, "at": at} for state, at in w.connector.breaker.transitions
                    ],
                    "owned_partitions": sorted(w.owned),
                }
                for c, w in self.channels.items()
            },
        }

    def _install_pages(self) -> None:
        role = self

        class ConnectorsView(View):
            """Breaker state of each channel and the fault injection in force."""

            async def get(self, request: Request) -> Response:
                return self.json(role.state())

        class FaultsView(View):
            """GET the injected faults; POST {"outage": bool, "error_rate": float} to change them (demos, tests)."""

            async def get(self, request: Request) -> Response:
                return self.json(role.state())

            async def post(self, request: Request) -> Response:
                if (refused := operator_auth.refusal(self, request, settings=role.ctx.settings)) is not None:
                    return refused
                body = await request.json()
                role.faults.update(error_rate=body.get("error_rate"), outage=body.get("outage"))
                return self.json(role.state())

        self.ctx.app.page("/connectors")(ConnectorsView)
        self.ctx.app.page("/connectors/faults")(FaultsView)
