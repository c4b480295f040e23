"""Pipeline benchmark: messages/s from publish to READ in Cassandra, and send -> DELIVERED percentiles.

Runs real workers (`chat4all worker`) against the local stack (127.0.0.1 only), on topics
and an app id of their own, with 1 and 2 workers and both processing guarantees. Per run:

1. burst: ``--messages`` (default 2000) published at once; messages/s = messages READ in
   Cassandra / seconds from the first publish to the last READ (the whole lifecycle,
   including the simulated 0.1-0.5 s + 2-5 s receipt delays);
2. paced: ``--rate`` messages/s (default 40) for ``--paced-seconds`` (default 15), below
   capacity: p50/p95/p99 of send (ts_ms) -> DELIVERED (delivered_at), which includes the
   simulated 100-500 ms delivery delay.

Bounded by ``--timeout`` seconds per phase (default 180).

    .venv/bin/python bench/pipeline_bench.py [--messages 2000] [--rate 40] [--guarantees at_least_once,exactly_once] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chat4all.cassandra import connect
from chat4all.settings import get_settings
from cli.harness.isolation import IsolatedPipeline
from cli.harness.seeding import events_for, publish_messages, setup_conversations


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wait_read(session, select, convs, count: int, start: float, timeout: float) -> tuple[list, float | None]:  # type: ignore[no-untyped-def]
    rows: list = []
    while time.time() - start < timeout:
        rows = [r for cid in convs for r in session.execute(select, (uuid.UUID(cid),))]
        if sum(1 for r in rows if r.status == "READ") >= count:
            return rows, time.time()
        time.sleep(0.5)
    return rows, None


def run_once(
    *,
    guarantee: str,
    workers: int,
    messages: int,
    conversations: int,
    timeout: float,
    rate: float,
    paced_seconds: float,
) -> dict[str, object]:
    settings = get_settings()
    session = connect(settings)
    pipeline = IsolatedPipeline(
        settings,
        name="c4a-bench",
        env={"CHAT4ALL_PROCESSING_GUARANTEE": guarantee, "CHAT4ALL_LOG_LEVEL": "WARNING"},
    )
    try:
        procs = [pipeline.worker() for _ in range(workers)]
        for p in procs:
            p.wait_ready(timeout=120)
        time.sleep(3 if workers > 1 else 0)  # let the group settle after the second join
        convs = setup_conversations(session, conversations)
        events = events_for(convs, messages, prefix="bench")
        select = session.prepare(
            "SELECT ts, status, delivered_at, read_at FROM messages WHERE conversation_id = ?"
        )
        start = time.time()
        publish_messages(settings, events, prefix=pipeline.prefix)
        published = time.time()
        rows, done_at = _wait_read(session, select, convs, messages, start, timeout)
        read = [r for r in rows if r.status == "READ"]
        burst_ms = [
            (r.delivered_at - r.ts).total_seconds() * 1000 for r in rows if r.delivered_at is not None
        ]
        elapsed = (done_at or time.time()) - start

        # Paced phase: steady load below capacity, for the send -> DELIVERED latency.
        paced_convs = setup_conversations(session, conversations)
        paced = events_for(paced_convs, int(rate * paced_seconds), prefix="paced")
        step = max(1, int(rate / 10))
        t0 = time.time()
        for i in range(0, len(paced), step):
            for e in paced[i : i + step]:
                e["ts_ms"] = int(time.time() * 1000)  # the API stamps ts_ms when it accepts the send
            publish_messages(settings, paced[i : i + step], prefix=pipeline.prefix)
            time.sleep(max(0.0, t0 + (i + step) / rate - time.time()))
        prow, _ = _wait_read(session, select, paced_convs, len(paced), t0, timeout)
        delivered_ms = [
            (r.delivered_at - r.ts).total_seconds() * 1000 for r in prow if r.delivered_at is not None
        ]
        return {
            "guarantee": guarantee,
            "workers": workers,
            "messages": messages,
            "read": len(read),
            "publish_s": round(published - start, 2),
            "elapsed_s": round(elapsed, 2),
            "msgs_per_s": round(len(read) / elapsed, 1),
            "p50_ms": round(_percentile(delivered_ms, 0.50)) if delivered_ms else None,
            "p95_ms": round(_percentile(delivered_ms, 0.95)) if delivered_ms else None,
            "p99_ms": round(_percentile(delivered_ms, 0.99)) if delivered_ms else None,
            "mean_ms": round(statistics.fmean(delivered_ms)) if delivered_ms else None,
            "burst_p50_ms": round(_percentile(burst_ms, 0.50)) if burst_ms else None,
            "paced_delivered": len(delivered_ms),
            "paced_sent": len(paced),
            "complete": done_at is not None,
        }
    finally:
        pipeline.close()
        session.cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--guarantees", default="at_least_once,exactly_once")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    results = []
    for guarantee in args.guarantees.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            result = run_once(
                guarantee=guarantee,
                workers=workers,
                messages=args.messages,
                conversations=args.conversations,
                timeout=args.timeout,
                rate=args.rate,
                paced_seconds=args.paced_seconds,
            )
            results.append(result)
            print(result, file=sys.stderr, flush=True)
    cols = [
        "guarantee",
        "workers",
        "messages",
        "read",
        "elapsed_s",
        "msgs_per_s",
        "complete",
        "burst_p50_ms",
        "paced_sent",
        "paced_delivered",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
