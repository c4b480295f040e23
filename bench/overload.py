"""Overload through the real gRPC API: offered a multiple of the sustained rate, the API sheds the excess.

What it runs, on 127.0.0.1 against the running local stack (`chat4all stack up`):

1. a platform of its own: topics under a fresh ``CHAT4ALL_TOPIC_PREFIX`` and a fresh
   ``CHAT4ALL_APP_ID`` (tests/fixtures/worker.py's IsolatedPipeline), its own
   `chat4all worker --role all` and its own `chat4all api` on free ports. Every setting stays
   at its default (the rate limit, the admission bounds, the simulated delays) unless given below;
2. ``--senders`` users (default 100), each in its own PRIVATE conversation with one peer who has
   a WhatsApp handle (bench/api_setup.py, cached between runs), so the simulated connector
   delivers every message; one warm-up message per sender, until all are DELIVERED;
3. open-loop sends (no client_message_id) at ``--factor`` x ``--sustained`` msg/s (default
   3 x 300) for ``--seconds`` (default 20), each issued at its time whatever the earlier ones are
   doing, with a 10 s deadline;
4. then it waits (``--drain-timeout``, default 180 s) until every accepted message is DELIVERED
   (or READ) in Cassandra.

It reports per second: offered, accepted, shed (RESOURCE_EXHAUSTED) and other answers, and the
backlog the API read from Kafka; in total: answers by code, whether every RESOURCE_EXHAUSTED
carried a ``retry-after`` trailer, how many accepted messages were delivered, and the drain time
(the last of them DELIVERED minus the last send). It passes when no answer was CANCELLED,
DEADLINE_EXCEEDED or another error, every refusal had ``retry-after``, and every accepted message
was delivered. Before the platform starts it measures the machine's yardstick (bench/yardstick.py:
raw aiokafka pass-through on the same broker, ``--yardstick-messages`` records, default 100,000,
0 skips it), printed and written to the results. Results (results.md, results.json, overload.png,
the API's and worker's logs) go to ``--out``/overload-<UTC time>/ (default bench/results/).

    .venv/bin/python bench/overload.py                        # 900 msg/s offered for 20 s
    .venv/bin/python bench/overload.py --sustained 100 --factor 3 --seconds 20
    .venv/bin/python bench/overload.py --max-lag 2000         # CHAT4ALL_API_ADMISSION_MAX_LAG for this run
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import secrets
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.api_setup import senders as bench_senders  # noqa: E402
from bench.burst import add_yardstick_arg, measure_yardstick, yardstick_lines  # noqa: E402
from bench.yardstick import YardstickResult  # noqa: E402
from chat4all.cassandra import connect  # noqa: E402
from chat4all.settings import Settings, get_settings  # noqa: E402
from chat4all.v1 import messages_pb2, messages_pb2_grpc  # noqa: E402
from cli.harness.api_process import ApiProcess, start_api  # noqa: E402
from cli.harness.isolation import IsolatedPipeline  # noqa: E402
from cli.harness.worker_process import WorkerProcess  # noqa: E402

logger = logging.getLogger("bench.overload")

DELIVERED = {"DELIVERED", "READ"}
SEND_TIMEOUT = 10.0


@dataclass(slots=True)
class Send:
    second: int  # which second of the load it was scheduled in
    code: str | None = None
    retry_after: str | None = None
    message_id: str | None = None
    conversation_id: str = ""
    latency: float = 0.0


def metric(api: ApiProcess, name: str) -> float | None:
    try:
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=2).read().decode()
        )
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def send_one(stub: messages_pb2_grpc.MessageServiceStub, send: Send, token: str, content: str) -> None:
    start = time.monotonic()
    try:
        reply = await stub.SendMessage(
            messages_pb2.SendMessageRequest(conversation_id=send.conversation_id, content=content),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=SEND_TIMEOUT,
        )
    except grpc.aio.AioRpcError as exc:
        send.code = exc.code().name
        send.retry_after = dict(exc.trailing_metadata() or ()).get("retry-after")
    else:
        send.code, send.message_id = "OK", reply.message_id
    send.latency = time.monotonic() - start


async def run_load(
    api: ApiProcess, pairs: list[tuple[str, str]], *, rate: float, seconds: float
) -> tuple[list[Send], list[tuple[int, float | None]], float]:
    """Open loop at ``rate`` for ``seconds``; returns the sends, the API's backlog per second and the last send time."""
    channels = [
        grpc.aio.insecure_channel(api.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(4)
    ]
    stubs = [messages_pb2_grpc.MessageServiceStub(c) for c in channels]
    total = round(rate * seconds)
    sends: list[Send] = []
    tasks: set[asyncio.Task] = set()
    lags: list[tuple[int, float | None]] = []

    async def sample_lag() -> None:
        for second in range(int(seconds) + 1):
            lags.append((second, await asyncio.to_thread(metric, api, "chat4all_api_pipeline_lag")))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_lag())
    t0 = time.monotonic() + 0.05
    for i in range(total):
        at = t0 + i / rate
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        token, conversation_id = pairs[i % len(pairs)]
        send = Send(second=int(at - t0), conversation_id=conversation_id)
        sends.append(send)
        task = asyncio.create_task(send_one(stubs[i % len(stubs)], send, token, f"overload #{i}"))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    last_send = time.monotonic()
    await asyncio.gather(*tasks)
    await sampler
    for c in channels:
        await c.close()
    return sends, lags, last_send


async def warm_up(api: ApiProcess, pairs: list[tuple[str, str]], settings: Settings, timeout: float) -> None:
    """One message per sender, until every one is DELIVERED: worker, connector and tracker are live."""
    async with grpc.aio.insecure_channel(api.target) as channel:
        stub = messages_pb2_grpc.MessageServiceStub(channel)
        sends = [Send(second=0, conversation_id=cid) for _token, cid in pairs]
        await asyncio.gather(
            *(send_one(stub, s, token, "warm-up") for s, (token, _cid) in zip(sends, pairs, strict=True))
        )
    bad = Counter(s.code for s in sends if s.code != "OK")
    if bad:
        raise RuntimeError(f"warm-up sends failed: {dict(bad)}")
    missing = await wait_delivered(settings, sends, timeout=timeout)
    if missing:
        raise RuntimeError(f"warm-up: {len(missing)} messages not DELIVERED after {timeout:.0f} s")


async def wait_delivered(settings: Settings, sends: list[Send], *, timeout: float) -> set[str]:
    """Poll Cassandra until every accepted send is DELIVERED or READ; returns the ids that never were."""
    pending: dict[str, set[str]] = {}
    for s in sends:
        if s.code == "OK" and s.message_id:
            pending.setdefault(s.conversation_id, set()).add(s.message_id)
    session = await asyncio.to_thread(connect, settings)
    try:
        query = session.prepare("SELECT message_id, status FROM messages WHERE conversation_id = ?")
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for cid in list(pending):
                rows = await asyncio.to_thread(session.execute, query, (uuid.UUID(cid),))
                done = {str(r.message_id) for r in rows if r.status in DELIVERED}
                pending[cid] -= done
                if not pending[cid]:
                    del pending[cid]
            if pending:
                await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(session.cluster.shutdown)
    return {m for ids in pending.values() for m in ids}


def render(
    meta: dict,
    sends: list[Send],
    lags: list[tuple[int, float | None]],
    verdict: dict,
    yardstick: YardstickResult | None = None,
) -> str:
    per_second: dict[int, Counter] = {}
    for s in sends:
        per_second.setdefault(s.second, Counter())[s.code or "?"] += 1
    lag_at = dict(lags)
    lines = [
        f"# Overload: {meta['offered_rate']:g} msg/s offered for {meta['seconds']:g} s "
        f"({meta['factor']:g} x {meta['sustained']:g})",
        "",
        f"{meta['date']}; {meta['machine']}; {meta['senders']} senders; API settings: {meta['api_env'] or 'defaults'}.",
        "",
        *yardstick_lines(yardstick),
        "| second | offered | accepted | shed (RESOURCE_EXHAUSTED) | other | backlog read by the API |",
        "|---|---|---|---|---|---|",
    ]
    for second in sorted(per_second):
        c = per_second[second]
        other = sum(v for k, v in c.items() if k not in ("OK", "RESOURCE_EXHAUSTED"))
        lag = lag_at.get(second)
        lines.append(
            f"| {second} | {sum(c.values())} | {c['OK']} | {c['RESOURCE_EXHAUSTED']} | {other} | "
            f"{'-' if lag is None or lag < 0 else f'{lag:.0f}'} |"
        )
    lines += ["", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in verdict.items()]
    return "\n".join(lines) + "\n"


def plot(path: Path, sends: list[Send], lags: list[tuple[int, float | None]], rate: float) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib not installed: no plot")
        return
    seconds = sorted({s.second for s in sends})
    accepted = [sum(1 for s in sends if s.second == t and s.code == "OK") for t in seconds]
    shed = [sum(1 for s in sends if s.second == t and s.code == "RESOURCE_EXHAUSTED") for t in seconds]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.axhline(rate, color="grey", linestyle=":", label=f"offered ({rate:g}/s)")
    ax.plot(seconds, accepted, marker="o", label="accepted / s")
    ax.plot(seconds, shed, marker="x", label="shed (RESOURCE_EXHAUSTED) / s")
    ax.set_xlabel("second of the load")
    ax.set_ylabel("messages / s")
    lag_ax = ax.twinx()
    lag_ax.plot(
        [t for t, v in lags if v is not None and v >= 0],
        [v for _t, v in lags if v is not None and v >= 0],
        color="tab:red",
        alpha=0.5,
        label="backlog (messages)",
    )
    lag_ax.set_ylabel("backlog read by the API (messages)")
    handles = ax.get_legend_handles_labels()[0] + lag_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    ax.set_title("SendMessage under overload: admission control")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def start_platform(
    args: argparse.Namespace, out: Path
) -> tuple[IsolatedPipeline, ApiProcess, str, dict[str, str]]:
    """This run's topics, worker and API (IsolatedPipeline and start_api run event loops of their own)."""
    settings = get_settings()
    pipeline = IsolatedPipeline(settings, name="bench-overload")
    api_env = {} if args.max_lag is None else {"CHAT4ALL_API_ADMISSION_MAX_LAG": str(args.max_lag)}
    try:
        worker = WorkerProcess(app_id=pipeline.app_id, env=pipeline.env, log_path=out / "worker.log").start()
        pipeline.workers.append(worker)  # stopped by pipeline.close()
        secret = secrets.token_hex(32)
        api = start_api(
            {**pipeline.env, "CHAT4ALL_APP_ID": pipeline.app_id, "CHAT4ALL_JWT_SECRET": secret, **api_env},
            log_dir=out,
        )
        worker.wait_ready()
    except BaseException:
        pipeline.close()
        raise
    logger.info(
        "API on %s (pid %d), worker pid %d, app id %s",
        api.target,
        api.proc.pid,
        worker.proc.pid,
        pipeline.app_id,
    )
    return pipeline, api, secret, api_env


async def run(
    args: argparse.Namespace,
    out: Path,
    pipeline: IsolatedPipeline,
    api: ApiProcess,
    secret: str,
    api_env: dict[str, str],
    yardstick: YardstickResult | None = None,
) -> int:
    pairs = await asyncio.to_thread(
        bench_senders, api.target, users=args.senders, secret=secret, whatsapp_peer=True
    )
    isolated = get_settings().model_copy(update={"topic_prefix": pipeline.prefix, "app_id": pipeline.app_id})
    await warm_up(api, pairs, isolated, timeout=120)
    rate = args.sustained * args.factor
    logger.info("offering %.0f msg/s for %.0f s", rate, args.seconds)
    sends, lags, last_send = await run_load(api, pairs, rate=rate, seconds=args.seconds)
    codes = Counter(s.code for s in sends)
    logger.info("answers: %s; waiting for every accepted message to be DELIVERED", dict(codes))
    undelivered = await wait_delivered(isolated, sends, timeout=args.drain_timeout)
    drain = time.monotonic() - last_send
    refused = [s for s in sends if s.code == "RESOURCE_EXHAUSTED"]
    accepted = codes.get("OK", 0)
    bad = {k: v for k, v in codes.items() if k not in ("OK", "RESOURCE_EXHAUSTED")}
    waits = [float(s.retry_after) for s in refused if s.retry_after]
    verdict = {
        "offered": len(sends),
        "accepted": f"{accepted} ({accepted / args.seconds:.0f}/s)",
        "shed (RESOURCE_EXHAUSTED)": len(refused),
        "other answers (CANCELLED, DEADLINE_EXCEEDED, ...)": bad or 0,
        "refusals without retry-after": len(refused) - len(waits),
        "retry-after given (min / max s)": f"{min(waits):.3f} / {max(waits):.3f}" if waits else "-",
        "refusal latency p99 (ms)": f"{1000 * percentile([s.latency for s in refused], 0.99):.1f}"
        if refused
        else "-",
        "accepted latency p99 (ms)": f"{1000 * percentile([s.latency for s in sends if s.code == 'OK'], 0.99):.1f}",
        "accepted and DELIVERED": f"{accepted - len(undelivered)} of {accepted}",
        "drain (last DELIVERED - last send, s, +-1)": f"{drain:.1f}"
        if not undelivered
        else f"not within {args.drain_timeout:.0f}",
    }
    ok = not bad and not undelivered and len(waits) == len(refused)
    verdict["result"] = "PASS" if ok else "FAIL"
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, everything co-located",
        "offered_rate": rate,
        "factor": args.factor,
        "sustained": args.sustained,
        "seconds": args.seconds,
        "senders": args.senders,
        "api_env": api_env,
    }
    report = render(meta, sends, lags, verdict, yardstick)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "yardstick": asdict(yardstick) if yardstick else None,
                "verdict": verdict,
                "lag": lags,
                "codes": dict(codes),
            },
            indent=2,
            default=str,
        )
    )
    plot(out / "overload.png", sends, lags, rate)
    print(report)
    return 0 if ok else 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sustained", type=float, default=300.0, help="the rate the platform sustains (msg/s, default 300)"
    )
    parser.add_argument("--factor", type=float, default=3.0, help="offered = factor x sustained (default 3)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load (default 20 s)")
    parser.add_argument(
        "--senders", type=int, default=100, help="senders, each in its own conversation (default 100)"
    )
    parser.add_argument(
        "--max-lag", type=int, help="CHAT4ALL_API_ADMISSION_MAX_LAG for this run's API (default: its default)"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=180.0,
        help="longest wait for every accepted message to be DELIVERED",
    )
    add_yardstick_arg(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = args.out / f"overload-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True, exist_ok=True)
    yardstick = measure_yardstick(get_settings().kafka_bootstrap, args.yardstick_messages)
    pipeline, api, secret, api_env = start_platform(args, out)
    try:
        return asyncio.run(run(args, out, pipeline, api, secret, api_env, yardstick))
    finally:
        api.stop()
        pipeline.close()


if __name__ == "__main__":
    sys.exit(main())
