"""Garbage collection on the worker's event loop: every collection timed, and the start-up heap frozen.

CPython's cyclic collector stops the thread that triggers it. A full (generation 2)
collection walks every tracked object, and a worker holds about 130,000 from its imports
and its app alone (faust, aiokafka, grpc, the Cassandra driver, OpenTelemetry): on the loop that
the agents and the inspector's pages share, such a walk is one long stretch without a
suspension. ``freeze_heap`` moves what exists once the worker has started into the permanent
generation, which collections skip; ``GcPauses`` times each collection (Prometheus histogram
``chat4all_gc_pause_seconds``, and a running total that ``LoopHold`` reads per step).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

gc_pause_seconds = Histogram(
    "chat4all_gc_pause_seconds",
    "Wall time of each garbage collection of the worker's process, per generation collected.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
)
# Wall time counts what the machine took from the thread meanwhile; CPU time is the collection's own.
gc_cpu_seconds = Counter(
    "chat4all_gc_cpu_seconds_total",
    "CPU time the worker's garbage collections took, per generation collected.",
    ["generation"],
)


class GcPauses:
    """Times every collection (a ``gc.callbacks`` hook) and keeps the total per thread that ran it."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._observers = [gc_pause_seconds.labels(str(g)) for g in range(3)]
        self._cpu = [gc_cpu_seconds.labels(str(g)) for g in range(3)]

    def install(self) -> None:
        """Start timing collections (idempotent)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop timing collections."""
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def thread_seconds(self) -> float:
        """CPU seconds the calling thread has spent in collections since ``install``."""
        return float(getattr(self._local, "total", 0.0))

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        local = self._local
        if phase == "start":
            local.started = (time.perf_counter(), time.thread_time())
            return
        started = getattr(local, "started", None)
        if started is None:  # installed in the middle of a collection
            return
        local.started = None
        wall, cpu = time.perf_counter() - started[0], time.thread_time() - started[1]
        local.total = getattr(local, "total", 0.0) + cpu
        generation = int(info.get("generation", 2))
        self._observers[generation].observe(wall)
        self._cpu[generation].inc(cpu)


# One per process: gc.callbacks is process-wide.
PAUSES = GcPauses()


def freeze_heap() -> int:
    """Collect once, then move every surviving object into the permanent generation; returns how many.

    Called when the worker has started: what exists then (modules, the app, its agents and
    tables, the clients) lives as long as the process, and later collections no longer walk it.
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(
        "gc: %d objects frozen after start-up (%.0f ms)", frozen, (time.perf_counter() - started) * 1000
    )
    return frozen
