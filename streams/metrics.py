"""Prometheus metrics of a worker on its /metrics page: per-agent events and durations, pipeline counters, consumer lag."""

from __future__ import annotations

from collections.abc import Callable

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from tables.options import memory_in_use

agent_events = Counter(
    "chat4all_agent_events_total", "Events an agent finished (acked), per agent.", ["agent"]
)
agent_event_seconds = Histogram(
    "chat4all_agent_event_seconds",
    "Per agent: time from taking an event to acking it (the decision plus its background Cassandra writes and broker acks).",
    ["agent"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def agent_observer(agent: str) -> Callable[[float], None]:
    """What an agent's InFlight calls per finished event (labels bound once: this runs per event)."""
    events = agent_events.labels(agent)
    seconds = agent_event_seconds.labels(agent)

    def observe(elapsed: float) -> None:
        events.inc()
        seconds.observe(elapsed)

    return observe


messages_routed = Counter("chat4all_messages_routed_total", "Messages the router persisted and fanned out.")
duplicates_skipped = Counter(
    "chat4all_router_duplicates_total", "Messages the router had already routed (dedup hits)."
)
outbound_sent = Counter("chat4all_outbound_total", "Outbound records the router published.", ["channel"])
dead_letters = Counter("chat4all_dead_letters_total", "Records sent to dead-letters.", ["source", "reason"])
transitions = Counter(
    "chat4all_receipt_transitions_total",
    "Receipt updates seen by the status tracker, by outcome (applied, duplicate, stale, rejected, unknown).",
    ["status", "outcome"],
)
connector_sends = Counter(
    "chat4all_connector_sends_total", "Connector send attempts by outcome.", ["channel", "outcome"]
)
connector_deliveries = Counter(
    "chat4all_connector_deliveries_total",
    "Outbound records a connector finished, by outcome (sent, failed after its attempts, invalid).",
    ["channel", "outcome"],
)
DELIVERY_OUTCOMES = ("sent", "failed", "invalid")
provider_call_seconds = Histogram(
    "chat4all_connector_provider_call_seconds",
    "Time of one send call to the channel's provider (each attempt, failed ones too).",
    ["channel"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
breaker_state = Gauge(
    "chat4all_connector_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open).", ["channel"]
)
scheduled_pending = Gauge(
    "chat4all_schedule_pending",
    "100 ms buckets of scheduled DELIVERED/READ receipts waiting, per channel.",
    ["channel"],
)
cassandra_batch_writes = Histogram(
    "chat4all_cassandra_batch_writes",
    "Writes per unlogged batch the worker sent to Cassandra.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
cassandra_retries = Counter(
    "chat4all_cassandra_retries_total", "Cassandra operations retried during an outage.", ["operation"]
)
stale_records_skipped = Counter(
    "chat4all_stale_records_skipped_total",
    "Fetched records skipped because a seek moved their partition's position back to or before them (fetched again).",
    ["topic"],
)
consumer_lag = Gauge(
    "chat4all_consumer_lag",
    "Records behind the end of each assigned partition (end offset - committed offset).",
    ["topic", "partition"],
)
status_latency = Histogram(
    "chat4all_status_latency_seconds",
    "Time from the message's send (ts_ms) to a receipt reaching a status.",
    ["status"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 3, 5, 7.5, 10, 20, 60),
)

rocksdb_memory = Gauge(
    "chat4all_rocksdb_memory_bytes",
    "RocksDB memory of this worker's tables: the shared cache in all (memtables charged to it) and the memtables.",
    ["kind"],
)


def _set_rocksdb_memory() -> None:
    usage = memory_in_use()
    if usage is not None:
        rocksdb_memory.labels("cache_total").set(usage[0])
        rocksdb_memory.labels("memtables").set(usage[1])


def install_metrics(app: faust.App) -> None:
    """The /metrics page on ``app`` and the consumer-lag gauge, refreshed every 5 s.

    Not faust's Prometheus sensor: it instruments every event, send and table access (about
    5% of the worker's CPU at 300 msg/s, docs/performance.md), while these metrics cost one
    counter and one histogram per event.
    """

    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            _set_rocksdb_memory()
            # As a header: aiohttp refuses a content_type argument that carries a charset.
            return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.page("/metrics")(MetricsView)

    lag_reported: set[tuple[str, str]] = set()  # the (topic, partition) series this worker publishes

    @app.timer(interval=5.0)
    async def update_consumer_lag() -> None:
        """Publish end offset minus committed offset per assigned partition (faust's sensor has no lag gauge)."""
        consumer = app.consumer
        try:
            assignment = consumer.assignment()
        except Exception:  # the consumer is not started yet, or rebalancing
            return
        # A partition that moved to another worker is reported there: its series here would
        # repeat its last value for ever (and double it in a sum by topic).
        assigned = {(tp.topic, str(tp.partition)) for tp in assignment}
        for labels in lag_reported - assigned:
            consumer_lag.remove(*labels)
        lag_reported.intersection_update(assigned)
        if not assignment:
            return
        committed = getattr(consumer, "_committed_offset", {})
        for tp in assignment:
            try:
                end = consumer.highwater(tp)
            except Exception:
                continue
            done = committed.get(tp)
            if end is None or done is None:  # nothing committed by this worker yet: unknown, not "everything"
                continue
            consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, end - done))
            lag_reported.add((tp.topic, str(tp.partition)))
