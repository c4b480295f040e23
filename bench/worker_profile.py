"""Worker cost at a fixed rate: CPU ms per message of the worker, Kafka and Cassandra, and a py-spy profile.

Starts one worker (`chat4all worker --role all`) on topics and an app id of its own, publishes
``--rate`` messages/s straight to its `messages` topic for ``--seconds`` (each message has one
WhatsApp recipient, the default simulated delays apply), waits until every message is READ,
and reads each process's CPU time from /proc over the paced step. With ``--profile FILE``
py-spy samples the worker during the step (``--format raw`` folded stacks, or a flamegraph
SVG when FILE ends in .svg).

    .venv/bin/python bench/worker_profile.py --rate 300 --seconds 30 [--profile /tmp/worker.txt]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proc_cpu import CpuMeter, stack_pids
from chat4all.cassandra import connect
from chat4all.settings import get_settings
from cli.harness.isolation import IsolatedPipeline
from cli.harness.seeding import events_for, publish_messages, setup_conversations


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--conversations", type=int, default=48)
    parser.add_argument("--profile", default=None, help="py-spy output file (raw folded stacks, or .svg)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    settings = get_settings()
    session = connect(settings)
    pipeline = IsolatedPipeline(settings, name="c4a-prof", env={"CHAT4ALL_LOG_LEVEL": "WARNING"})
    try:
        worker = pipeline.worker()
        worker.wait_ready(timeout=120)
        convs = setup_conversations(session, args.conversations, channels={"whatsapp": "+5511999999999"})
        events = events_for(convs, int(args.rate * args.seconds), prefix="prof")
        meter = CpuMeter({"worker": worker.proc.pid, **stack_pids(settings.stack_dir)})
        spy = None
        if args.profile:
            fmt = "flamegraph" if args.profile.endswith(".svg") else "raw"
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(worker.proc.pid),
                    "-d",
                    str(int(args.seconds)),
                    "-r",
                    "50",
                    "-f",
                    fmt,
                    "-o",
                    args.profile,
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        before = meter.sample()
        step = max(1, int(args.rate / 20))
        t0 = time.time()
        for i in range(0, len(events), step):
            for e in events[i : i + step]:
                e["ts_ms"] = int(time.time() * 1000)
            publish_messages(settings, events[i : i + step], prefix=pipeline.prefix)
            time.sleep(max(0.0, t0 + (i + step) / args.rate - time.time()))
        sent_s = time.time() - t0
        select = session.prepare("SELECT status FROM messages WHERE conversation_id = ?")
        deadline = time.time() + args.timeout
        read = 0
        while time.time() < deadline:
            read = sum(
                1 for cid in convs for r in session.execute(select, (uuid.UUID(cid),)) if r.status == "READ"
            )
            if read >= len(events):
                break
            time.sleep(0.5)
        drained_s = time.time() - t0
        used = meter.since(before)
        try:
            metrics_text = urllib.request.urlopen(worker.url + "/metrics", timeout=5).read().decode()
        except OSError:  # a worker without its metrics page
            metrics_text = ""
        if spy is not None:
            spy.wait(timeout=args.seconds + 30)
        n = len(events)
        print(
            f"offered {args.rate:g} msg/s for {sent_s:.1f} s: {n} messages, {read} READ after {drained_s:.1f} s"
        )
        batches = _metric(metrics_text, "chat4all_cassandra_batch_writes_count")
        writes = _metric(metrics_text, "chat4all_cassandra_batch_writes_sum")
        if batches:
            print(
                f"Cassandra: {writes:.0f} writes in {batches:.0f} requests ({writes / batches:.1f} per batch)"
            )
        print("| process | CPU s | ms per message |")
        print("|---|---|---|")
        for name, seconds in sorted(used.items()):
            print(f"| {name} | {seconds:.2f} | {1000 * seconds / n:.2f} |")
    finally:
        pipeline.close()
        session.cluster.shutdown()


if __name__ == "__main__":
    main()
