"""Admission control for SendMessage: shed what the platform cannot carry, early and cheaply.

Two bounds, both answered with RESOURCE_EXHAUSTED and a ``retry-after`` trailer before the call
costs anything (no token taken from the rate limit, nothing published):

- calls in flight in this process (``CHAT4ALL_API_MAX_INFLIGHT_SENDS``): when Kafka or Cassandra
  slow down, calls pile up waiting on them; past the bound new ones are refused at once instead
  of queueing until their deadline (CANCELLED, DEADLINE_EXCEEDED at the client);
- the router's backlog on ``messages`` (``CHAT4ALL_API_ADMISSION_MAX_LAG``): end offsets minus
  the committed offsets of the Faust app's consumer group (``CHAT4ALL_APP_ID``), read from Kafka
  every ``CHAT4ALL_API_ADMISSION_POLL_SECONDS``. The backlog is estimated as the last reading,
  plus what this process published since, minus what the group drained (at the rate it
  committed over the last readings) since its committed offsets last moved: a surge is cut
  within milliseconds, not at the next poll, and admissions do not stall between two commits.

The bound is a number of messages, not a delay: the rate the group drains is what it was asked
to do, not what it could do, so "backlog / drain rate" would take a burst on a quiet platform
for a pipeline hours behind. In time, the bound is max_lag / the pipeline's capacity (5,000 at
300 msg/s: about 17 s). Committed offsets trail the workers by up to a commit interval (faust
commits every 2.8 s) plus the events they hold in flight, so a healthy pipeline at 300 msg/s
shows about 1,000 messages of "backlog": the default sits well above that.

The backlog is unknown (and nothing is shed for it) while the group has no committed offset on
the topic (no worker ever ran on it) or Kafka cannot be read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from api import metrics
from api.errors import ApiError
from chat4all.settings import Settings
from chat4all.topic_names import MESSAGES, topic_name

logger = logging.getLogger(__name__)

# A reading older than this many poll intervals (and at least _STALE_SECONDS) is no longer
# trusted: Kafka is unreachable. Polls on a loaded machine take a while, hence the floor.
_STALE_POLLS = 5
_STALE_SECONDS = 10.0
# The drain rate is measured over the readings of the last _DRAIN_WINDOW seconds (at least
# _DRAIN_MIN_SPAN apart): the group commits every few seconds, so one interval's delta is lumpy.
_DRAIN_WINDOW = 10.0
_DRAIN_MIN_SPAN = 3.0
# Committed offsets move in steps, once per commit interval (faust: 2.8 s, seen here up to a poll
# later): between two steps the group keeps working at its drain rate, for about this long at
# most. Longer without a step looks like a stall, and no more progress is assumed.
_COMMIT_GAP = 5.0
# How long a client refused for in-flight work waits: such pile-ups clear within a publish timeout.
_INFLIGHT_RETRY_SECONDS = 0.5
_MAX_RETRY_SECONDS = 30.0


def _retry_after(seconds: float) -> str:
    return f"{min(_MAX_RETRY_SECONDS, max(0.1, seconds)):.3f}"


class Admission:
    """Decides whether SendMessage takes one more message; ``start()`` begins reading the lag."""

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._max_inflight = settings.api_max_inflight_sends
        self._max_lag = settings.api_admission_max_lag
        self._poll_seconds = settings.api_admission_poll_seconds
        self._topic = topic_name(settings, MESSAGES)
        self._group = settings.app_id
        self.inflight = 0
        self._lag: int | None = None  # at the last reading; None = unknown
        self._read_at = 0.0  # monotonic time of that reading
        self._published_since = 0  # by this process since that reading
        self._drain_rate = 0.0  # messages/s the group committed over the last readings
        self._committed: collections.deque[tuple[float, int]] = collections.deque()  # (time, committed total)
        self._committed_moved_at = 0.0  # when the committed total last changed
        self._task: asyncio.Task | None = None
        self._last_error: str | None = None

    # --- the decision ---------------------------------------------------------------------------

    def backlog(self, now: float | None = None) -> float | None:
        """Estimated messages the router has not committed yet, or None if unknown."""
        if self._lag is None:
            return None
        now = time.monotonic() if now is None else now
        if now - self._read_at > max(_STALE_SECONDS, _STALE_POLLS * self._poll_seconds):
            return None
        progress = self._drain_rate * min(now - self._committed_moved_at, _COMMIT_GAP)
        return max(0.0, self._lag + self._published_since - progress)

    def check(self) -> None:
        """Raise RESOURCE_EXHAUSTED (with ``retry-after``) if this send must be shed."""
        if self.inflight >= self._max_inflight:
            metrics.SHED.labels("inflight").inc()
            wait = _retry_after(_INFLIGHT_RETRY_SECONDS)
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server is busy ({self.inflight} sends in progress); retry in {wait} s",
                trailers=(("retry-after", wait),),
            )
        if self._max_lag <= 0:
            return
        backlog = self.backlog()
        if backlog is not None and backlog >= self._max_lag:
            metrics.SHED.labels("lag").inc()
            # Long enough for the group to drain back under the bound at its recent rate.
            drain = self._drain_rate
            wait = _retry_after((backlog - self._max_lag + 1) / drain if drain > 0 else _MAX_RETRY_SECONDS)
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the message pipeline is {math.ceil(backlog)} messages behind; retry in {wait} s",
                trailers=(("retry-after", wait),),
            )

    def published(self) -> None:
        """One more message on the topic from this process (counts into the backlog estimate).

        A message acknowledged while a reading is under way may be counted twice (in the reading
        and here) until the next reading: an overestimate by at most the sends in flight.
        """
        self._published_since += 1

    # --- reading the lag ----------------------------------------------------------------------

    @property
    def drain_rate(self) -> float:
        """Messages/s the router group committed over the last readings (0 = unknown or idle)."""
        return self._drain_rate

    async def start(self) -> None:
        """Start reading the router group's lag in the background (only with a lag bound set)."""
        if self._max_lag > 0 and self._task is None:
            self._task = asyncio.create_task(self._poll_forever(), name="admission-lag")

    async def stop(self) -> None:
        """Stop the lag readings."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll_forever(self) -> None:
        bootstrap = self._settings.kafka_bootstrap
        timeout_ms = int(self._settings.api_storage_timeout_seconds * 1000)
        while True:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
            # No group: this consumer only asks for end offsets, it never joins or commits.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=timeout_ms
            )
            try:
                await admin.start()
                await consumer.start()
                coordinator = await admin.find_coordinator(self._group)
                tps: list[TopicPartition] | None = None  # looked up once per connection
                while True:
                    started = time.monotonic()
                    tps = await self._read(admin, consumer, coordinator, tps)
                    await asyncio.sleep(max(0.0, self._poll_seconds - (time.monotonic() - started)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka down or the topic missing: the last reading goes stale
                error = f"{type(exc).__name__}: {exc}"
                if error != self._last_error:  # once per kind of failure, not every second
                    logger.warning("cannot read the lag of %s on %s: %s", self._group, self._topic, error)
                    self._last_error = error
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await admin.close()
            await asyncio.sleep(self._poll_seconds)

    async def _read(
        self,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        coordinator: int,
        tps: list[TopicPartition] | None,
    ) -> list[TopicPartition]:
        """One reading of the lag and the drain rate; returns the topic's partitions."""
        if tps is None:
            (described,) = await admin.describe_topics([self._topic])
            if described.get("error_code") or not described.get("partitions"):
                raise LookupError(f"topic {self._topic} not found")
            tps = [TopicPartition(self._topic, p["partition"]) for p in described["partitions"]]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(
            self._group, group_coordinator_id=coordinator, partitions=tps
        )
        now = time.monotonic()
        known = {tp: c.offset for tp, c in committed.items() if c.offset >= 0}
        if not known:
            self._lag, self._read_at, self._published_since = None, now, 0
            self._committed.clear()
            metrics.PIPELINE_LAG.set(-1)
            return tps
        # A partition the group never committed on is counted from its end: it says nothing yet.
        lag = sum(max(0, ends[tp] - known.get(tp, ends[tp])) for tp in tps)
        committed_total = sum(known.values())
        readings = self._committed
        if not readings or readings[-1][1] != committed_total:
            self._committed_moved_at = now
        readings.append((now, committed_total))
        while len(readings) > 2 and now - readings[1][0] >= _DRAIN_WINDOW:
            readings.popleft()
        first_at, first_total = readings[0]
        if now - first_at >= _DRAIN_MIN_SPAN:
            self._drain_rate = max(0.0, (committed_total - first_total) / (now - first_at))
        self._lag, self._read_at, self._published_since = lag, now, 0
        self._last_error = None
        metrics.PIPELINE_LAG.set(lag)
        metrics.PIPELINE_DRAIN.set(self._drain_rate)
        return tps
