"""How the worker's consumer fetches: wait for some bytes per fetch instead of answering each record alone."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_original_create = AIOKafkaConsumerThread._create_worker_consumer


def install(*, min_bytes: int, max_wait_ms: int) -> None:
    """Make every worker consumer fetch at least ``min_bytes`` or wait up to ``max_wait_ms`` (process-wide, idempotent).

    faust creates the aiokafka consumer with fetch_min_bytes=1, so under load the broker
    answers every fetch at once with the few records that just arrived: hundreds of fetch
    requests a second, each a round trip to the consumer thread and a getmany on the loop.
    Waiting for a few KiB (or a few ms) makes each fetch, and each batch the agents get,
    larger. faust exposes neither setting; aiokafka reads both from the consumer when it
    starts, so they are set on the consumer right after faust creates it.
    """
    if getattr(AIOKafkaConsumerThread._create_worker_consumer, "_chat4all_fetching", None) == (
        min_bytes,
        max_wait_ms,
    ):
        return

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = _original_create(self, transport)
        for name in ("_fetch_min_bytes", "_fetch_max_wait_ms"):
            if not hasattr(consumer, name):
                raise RuntimeError(f"aiokafka changed a private API ({name}); see {__name__}")
        consumer._fetch_min_bytes = min_bytes
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    create_worker_consumer._chat4all_fetching = (min_bytes, max_wait_ms)  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
