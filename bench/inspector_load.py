"""Inspector under load: send -> DELIVERED p95 of bench/step_load.py's step, plain and while the inspector's pages load.

Issue 11: the inspector's pages share the worker's event loop, and a page load under traffic
must not move the pipeline's send -> DELIVERED p95. What it runs, all on 127.0.0.1 against the
running local stack (`chat4all stack up`), with bench/step_load.py's own pieces:

1. the yardstick (bench/yardstick.py): raw aiokafka produce-then-consume on the same broker;
2. a platform of its own (step_load's ``Platform``: fresh topic prefix and app id, its own
   `chat4all api` and `chat4all worker --role all`, every other setting at its default);
3. ``--senders`` users with live event streams and a warm-up, as step_load does;
4. per rate of ``--rates`` (default 300 msg/s), ``--repeats`` (default 3) pairs of steps of
   ``--step-seconds`` (default 60) of open-loop SendMessage, each drained as step_load drains
   it (``--drain-timeout``): ``plain`` and ``pages``, in the order plain, pages, pages, plain,
   plain, pages, ... so that a drift of the shared machine weighs on both modes alike. During
   ``pages`` a loader fetches, every ``--page-interval`` s (default 1.0: as nine open tabs
   reloading every 3 s), the worker's /ui/, one table page (/ui/tables/<table>, the tables in
   turn) and the page of a message accepted a moment before (/ui/messages/<id>), as HTML, one
   after the other. The fetches run in a thread, so that the load generator's loop is not the
   one waiting; they stop when the step has drained.

Per step it prints the step_load figures (accepted/s, errors, send -> DELIVERED p50/p95/max,
drain, the worker's CPU ms per message), the worker's garbage collections in the step (from
``chat4all_gc_pause_seconds`` on its /metrics), and for ``pages`` the page loads (count,
errors, time to the last byte p50/p95/max per kind, and the longest run each held the
worker's event loop with the collection inside it, from its Server-Timing header); then per
rate the median p95 of each mode beside the yardstick.

Results (results.md, results.json, the API's and worker's logs) go to
``--out``/inspector-<UTC time>/ (default bench/results/). Bounded: 2 x repeats x sum(rates) x
step-seconds sends, each step ends at most drain-timeout (+ recover-timeout for a backlog)
after its last send, at most 3 page loads per page interval.

    .venv/bin/python bench/inspector_load.py                          # 300 msg/s, 3 x (plain, pages) of 60 s
    .venv/bin/python bench/inspector_load.py --rates 20 --step-seconds 5 --repeats 1 --yardstick-messages 0   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.proc_cpu import CpuMeter, stack_pids  # noqa: E402
from bench.step_load import (  # noqa: E402
    LoadGenerator,
    Platform,
    StepResult,
    _jsonable,
    _num,
    git_describe,
    percentile,
    summarise,
)
from bench.yardstick import YardstickResult, run_yardstick  # noqa: E402
from cli.harness.metrics import metric_value  # noqa: E402

logger = logging.getLogger("inspector_load")

TABLES = ("receipt-states", "whatsapp-schedule", "router-routed", "receipt-finals")
MODES = ("plain", "pages")
PAGE_KINDS = ("overview", "table", "message")
PAGE_TIMEOUT_S = 10.0


@dataclass
class PageLoads:
    """Page fetches of one step: per kind (overview, table, message) the seconds to the last byte."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PAGE_KINDS})
    # The page's longest run on the worker's event loop (its Server-Timing "loop", CPU ms), and
    # the garbage collection within that run ("loop-gc").
    loop_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PAGE_KINDS})
    loop_gc_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PAGE_KINDS})
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Count, errors and p50/p95/max ms per kind."""
        out: dict[str, Any] = {"errors": dict(self.errors)}
        for kind, values in self.seconds.items():
            ms = [v * 1000 for v in values]
            held = self.loop_ms[kind]
            longest = max(range(len(held)), key=held.__getitem__, default=None)
            out[kind] = {
                "loads": len(ms),
                "p50_ms": percentile(ms, 0.50),
                "p95_ms": percentile(ms, 0.95),
                "max_ms": max(ms, default=None),
                "loop_p95_ms": percentile(held, 0.95),
                "loop_max_ms": max(held, default=None),
                "loop_max_gc_ms": self.loop_gc_ms[kind][longest] if longest is not None else None,
                # The longest run of the page's own code: its run minus the collection inside it.
                "own_max_ms": max(
                    (h - g for h, g in zip(held, self.loop_gc_ms[kind], strict=True)), default=None
                ),
            }
        return out


def loop_hold_ms(server_timing: str, metric_name: str = "loop") -> float | None:
    """The duration (ms) of metric ``metric_name`` of a Server-Timing header value, None without one."""
    for metric in server_timing.split(","):
        name, _, params = metric.strip().partition(";")
        if name == metric_name:
            for param in params.split(";"):
                key, _, value = param.partition("=")
                if key.strip() == "dur":
                    return float(value)
    return None


class PageLoader:
    """A thread that loads the worker's inspector pages every ``interval`` s until stopped."""

    def __init__(self, *, base_url: str, interval: float, message_id: Callable[[], str | None]) -> None:
        self.base_url = base_url
        self.interval = interval
        self.message_id = message_id
        self.loads = PageLoads()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inspector-pages", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> PageLoads:
        self._stop.set()
        self._thread.join(timeout=PAGE_TIMEOUT_S * 4)
        return self.loads

    def _fetch(self, kind: str, path: str) -> None:
        req = urllib.request.Request(self.base_url + path, headers={"Accept": "text/html"})
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=PAGE_TIMEOUT_S) as resp:
                resp.read()
                timing = resp.headers.get("Server-Timing", "")
                held, gc_ms = loop_hold_ms(timing), loop_hold_ms(timing, "loop-gc")
        except urllib.error.HTTPError as exc:
            self.loads.errors[f"{kind} {exc.code}"] = self.loads.errors.get(f"{kind} {exc.code}", 0) + 1
            return
        except OSError as exc:
            name = f"{kind} {type(exc).__name__}"
            self.loads.errors[name] = self.loads.errors.get(name, 0) + 1
            return
        self.loads.seconds[kind].append(time.monotonic() - start)
        if held is not None:
            self.loads.loop_ms[kind].append(held)
            self.loads.loop_gc_ms[kind].append(gc_ms or 0.0)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            started = time.monotonic()
            self._fetch("overview", "/ui/")
            self._fetch("table", f"/ui/tables/{TABLES[tick % len(TABLES)]}")
            message_id = self.message_id()
            if message_id is not None:
                self._fetch("message", f"/ui/messages/{message_id}")
            tick += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


GC_LONG_S = "0.01"  # collections longer than this bucket bound count as long


def gc_totals(web_port: int) -> dict[str, float]:
    """The worker's collections so far, from its /metrics: per generation count, wall and CPU seconds, short ones."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=PAGE_TIMEOUT_S) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for g in range(3):
        generation = str(g)
        totals[f"gen{g}_count"] = metric_value(text, "chat4all_gc_pause_seconds_count", generation=generation)
        totals[f"gen{g}_sum"] = metric_value(text, "chat4all_gc_pause_seconds_sum", generation=generation)
        totals[f"gen{g}_short"] = metric_value(
            text, "chat4all_gc_pause_seconds_bucket", generation=generation, le=GC_LONG_S
        )
        totals[f"gen{g}_cpu"] = metric_value(text, "chat4all_gc_cpu_seconds_total", generation=generation)
    return totals


def gc_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Per generation: collections, their total wall and CPU ms, and how many took longer than GC_LONG_S, in a step."""

    def grown(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    return {
        f"gen{g}": {
            "collections": int(grown(f"gen{g}_count")),
            "total_ms": grown(f"gen{g}_sum") * 1000,
            "cpu_ms": grown(f"gen{g}_cpu") * 1000,
            "longer_than_10ms": int(grown(f"gen{g}_count") - grown(f"gen{g}_short")),
        }
        for g in range(3)
    }


@dataclass(kw_only=True)
class Step:
    """One step: its mode, step_load's result, the worker's collections, and the page loads (pages mode)."""

    mode: str
    result: StepResult
    gc: dict[str, Any] = field(default_factory=dict)
    pages: dict[str, Any] | None = None


def step_order(repeats: int) -> list[str]:
    """The modes of ``repeats`` pairs of steps, alternating which comes first: plain, pages, pages, plain, ..."""
    return [mode for r in range(repeats) for mode in (MODES if r % 2 == 0 else MODES[::-1])]


async def run_steps(args: argparse.Namespace, plat: Platform, meter: CpuMeter) -> list[Step]:
    gen = LoadGenerator(
        target=plat.target, senders=args.senders, channels=args.channels, send_timeout=args.send_timeout
    )
    steps: list[Step] = []
    try:
        await gen.setup_users()
        await gen.subscribe_all()
        await asyncio.sleep(1.0)  # the streams' subscriptions reach the hub
        logger.info("warm-up: every sender DELIVERED after %.1f s", await gen.warm_up(args.warmup_timeout))
        await asyncio.sleep(args.settle_seconds)
        index = 0
        for rate in args.rates:
            for mode in step_order(args.repeats):
                steps.append(await run_one(args, plat, meter, gen, index=index, rate=rate, mode=mode))
                index += 1
                await asyncio.sleep(args.settle_seconds)
    finally:
        await gen.close()
    return steps


async def run_one(
    args: argparse.Namespace,
    plat: Platform,
    meter: CpuMeter,
    gen: LoadGenerator,
    *,
    index: int,
    rate: float,
    mode: str,
) -> Step:
    """One step of ``rate`` msg/s, with the page loader running through it in ``pages`` mode."""
    logger.info("step %d: %g msg/s for %g s, %s", index, rate, args.step_seconds, mode)
    # The last accepted message id, set on this loop and read by the loader's thread.
    recent: list[str | None] = [None]

    def message_id() -> str | None:
        return recent[0]

    loader = None
    if mode == "pages":
        loader = PageLoader(
            base_url=f"http://127.0.0.1:{plat.web_port}", interval=args.page_interval, message_id=message_id
        )
    gc_before = gc_totals(plat.web_port)
    before = meter.sample()
    window_start = time.monotonic()
    if loader is not None:
        loader.start()
    watcher = asyncio.create_task(_follow_accepted(gen, recent))
    try:
        sends = await gen.run_step(index, rate, args.step_seconds)
        await gen.drain(sends, args.drain_timeout)
    finally:
        watcher.cancel()
        pages = await asyncio.to_thread(loader.stop) if loader is not None else None
    cpu = meter.since(before)
    window_s = time.monotonic() - window_start
    collections = gc_delta(gc_before, gc_totals(plat.web_port))
    delivered_by_timeout = {id(s) for s in sends if s.delivered is not None}
    pending = [
        s for s in sends if s.code == "OK" and s.delivered is None and s.message_id not in gen.failed_ids
    ]
    if pending:  # the next step must not measure this one's backlog
        logger.warning(
            "step %d: %d not DELIVERED; waiting up to %g s", index, len(pending), args.recover_timeout
        )
        deadline = time.monotonic() + args.recover_timeout
        while time.monotonic() < deadline and any(s.delivered is None for s in pending):
            await asyncio.sleep(0.2)
    result = summarise(
        rate=rate,
        seconds=args.step_seconds,
        sends=sends,
        cpu=cpu,
        window_s=window_s,
        delivered_by_timeout=delivered_by_timeout,
        loadavg=" ".join(Path("/proc/loadavg").read_text().split()[:3]),
        failed_ids=gen.failed_ids,
    )
    logger.info("step %d (%s): DELIVERED p95 %s s", index, mode, _num(result.delivered_p95_s, "{:.2f}"))
    return Step(
        mode=mode, result=result, gc=collections, pages=pages.summary() if pages is not None else None
    )


async def _follow_accepted(gen: LoadGenerator, recent: list[str | None]) -> None:
    """Keep ``recent[0]`` at the last accepted message id."""
    while True:
        recent[0] = next(reversed(gen.by_id), recent[0])
        await asyncio.sleep(0.1)


def render_markdown(*, meta: dict[str, Any], yardstick: YardstickResult | None, steps: list[Step]) -> str:
    lines = [
        f"Inspector under load, {meta['date']} — `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; code {meta['commit']}; {meta['senders']} senders, steps of "
        f"{meta['step_seconds']:g} s, {meta['repeats']} of each mode; pages every "
        f"{meta['page_interval']:g} s during `pages` steps.",
        "",
    ]
    if yardstick is not None:
        lines += [f"Yardstick: {yardstick.summary()}.", ""]
    lines += [
        "| offered/s | mode | sent | accepted/s | errors | DELIVERED p50 / p95 / max s | drain s | worker CPU ms/msg "
        "| worker GCs gen0/1/2 (> 10 ms) | GC wall / CPU ms |",
        "|---:|---|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for step in steps:
        s = step.result
        errors = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) or "0"
        lines.append(
            f"| {s.offered_rate:g} | {step.mode} | {s.sends} | {s.accepted_per_s:.1f} | {errors} | "
            f"{_num(s.delivered_p50_s, '{:.2f}')} / {_num(s.delivered_p95_s, '{:.2f}')} / "
            f"{_num(s.delivered_max_s, '{:.2f}')} | {_num(s.drain_s, '{:.2f}')} | "
            f"{_num(s.cpu_ms_per_msg.get('worker'), '{:.2f}')} | {_gc_counts(step.gc)} | "
            f"{_num(sum(g['total_ms'] for g in step.gc.values()) if step.gc else None, '{:.0f}')} / "
            f"{_num(sum(g['cpu_ms'] for g in step.gc.values()) if step.gc else None, '{:.0f}')} |"
        )
    lines += [
        "",
        "Page loads (time to the last byte) and the longest run each held the worker's event loop "
        "(Server-Timing `loop`, CPU; the collection inside the longest; the longest run less its "
        "collection):",
        "",
        "| offered/s | page | loads | p50 / p95 / max ms | loop held p95 / max ms | GC in max ms | own max ms |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        if step.pages is None:
            continue
        for kind in PAGE_KINDS:
            p = step.pages[kind]
            lines.append(
                f"| {step.result.offered_rate:g} | {kind} | {p['loads']} | "
                f"{_num(p['p50_ms'])} / {_num(p['p95_ms'])} / {_num(p['max_ms'])} | "
                f"{_num(p['loop_p95_ms'], '{:.2f}')} / {_num(p['loop_max_ms'], '{:.2f}')} | "
                f"{_num(p['loop_max_gc_ms'], '{:.2f}')} | {_num(p['own_max_ms'], '{:.2f}')} |"
            )
        if step.pages["errors"]:
            lines.append(f"| {step.result.offered_rate:g} | errors | {step.pages['errors']} | | | | |")
    lines += [""]
    for rate in meta["rates"]:
        line = [f"{rate:g} msg/s: send -> DELIVERED p95"]
        for mode in MODES:
            p95 = mode_values(steps, rate, mode, lambda r: r.delivered_p95_s)
            worker = mode_values(steps, rate, mode, lambda r: r.cpu_ms_per_msg.get("worker"))
            line.append(
                f"{mode} median {_num(_median(p95), '{:.3f}')} s ({', '.join(f'{v:.2f}' for v in p95)}), "
                f"worker median {_num(_median(worker), '{:.2f}')} ms/msg;"
            )
        lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def mode_values(
    steps: list[Step], rate: float, mode: str, pick: Callable[[StepResult], float | None]
) -> list[float]:
    """``pick`` of each step of ``mode`` at ``rate`` that has it, in step order."""
    values = (pick(st.result) for st in steps if st.mode == mode and st.result.offered_rate == rate)
    return [v for v in values if v is not None]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _gc_counts(gc: dict[str, Any]) -> str:
    if not gc:
        return "-"
    counts = "/".join(str(gc[f"gen{g}"]["collections"]) for g in range(3))
    long = "/".join(str(gc[f"gen{g}"]["longer_than_10ms"]) for g in range(3))
    return f"{counts} ({long})"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="300", help="offered rates, msg/s, comma-separated")
    parser.add_argument("--step-seconds", type=float, default=60.0, help="seconds of sending per step")
    parser.add_argument("--senders", type=int, default=48, help="senders, each in its own conversation")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels the senders share")
    parser.add_argument("--send-timeout", type=float, default=10.0, help="SendMessage deadline, seconds")
    parser.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds after a step's last send to wait for READ"
    )
    parser.add_argument(
        "--recover-timeout", type=float, default=60.0, help="extra seconds for a step's backlog to clear"
    )
    parser.add_argument("--settle-seconds", type=float, default=5.0, help="pause between steps")
    parser.add_argument("--warmup-timeout", type=float, default=120.0)
    parser.add_argument(
        "--page-interval", type=float, default=1.0, help="seconds between rounds of page loads (pages steps)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="steps of each mode per rate (orders alternate: AB BA AB ...)"
    )
    parser.add_argument("--yardstick-messages", type=int, default=100_000, help="0 skips the yardstick")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in str(args.rates).split(",") if r.strip()]
    if not args.rates or any(r <= 0 for r in args.rates):
        parser.error("--rates: positive numbers, e.g. 300")
    if args.step_seconds <= 0 or args.page_interval <= 0 or args.repeats <= 0:
        parser.error("--step-seconds, --page-interval and --repeats: positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    from chat4all.settings import get_settings

    settings = get_settings()
    started = dt.datetime.now(dt.UTC)
    out_dir = args.out / f"inspector-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    commit, dirty = git_describe()
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["bench/inspector_load.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), the stack, the API, "
        "the worker and this load generator co-located on 127.0.0.1",
        "commit": commit,
        "uncommitted": dirty,
        "senders": args.senders,
        "step_seconds": args.step_seconds,
        "page_interval": args.page_interval,
        "repeats": args.repeats,
        "rates": args.rates,
    }
    yardstick = None
    if args.yardstick_messages > 0:
        yardstick = asyncio.run(run_yardstick(settings.kafka_bootstrap, messages=args.yardstick_messages))
        print(yardstick.summary(), flush=True)
    plat = Platform(out_dir=out_dir)
    meta["app_id"] = plat.app_id
    try:
        plat.start()
        meter = CpuMeter({**plat.pids(), **stack_pids(settings.stack_dir), "loadgen": os.getpid()})
        steps = asyncio.run(run_steps(args, plat, meter))
    finally:
        plat.close()
    table = render_markdown(meta=meta, yardstick=yardstick, steps=steps)
    (out_dir / "results.md").write_text(table)
    (out_dir / "results.json").write_text(
        json.dumps(
            _jsonable(
                {
                    "meta": meta,
                    "yardstick": asdict(yardstick) if yardstick else None,
                    "steps": [
                        {"mode": s.mode, "result": asdict(s.result), "gc": s.gc, "pages": s.pages}
                        for s in steps
                    ],
                }
            ),
            indent=2,
        )
        + "\n"
    )
    print()
    print(table)
    print(f"Results in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
