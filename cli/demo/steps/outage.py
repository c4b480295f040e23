"""Step 5: an injected WhatsApp outage: the breaker goes OPEN, HALF_OPEN, CLOSED and the backlog drains, nothing lost."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType

from cli.demo.checkpoints import StepResult
from cli.demo.context import DemoContext
from cli.demo.displays import breakers_table, counts_table
from cli.demo.live import watch
from cli.demo.platform import DemoWorker

NAME = "outage"
TITLE = "A WhatsApp outage: breaker OPEN -> HALF_OPEN -> CLOSED, the backlog drains"
TEACHES = (
    "Each connector sends through a circuit breaker. After 5 failures in a row it OPENs: the connector "
    "stops calling the channel and holds its records in Kafka (they stay SENT; an outage does not use up "
    "their retry attempts, so nothing is dead-lettered). After the reset timeout it lets one probe through "
    "(HALF_OPEN): a failure opens it again, a success CLOSEs it and the held records flow. Kafka is the "
    "buffer: the backlog drains once the channel is back, each message exactly once in Cassandra."
)

_CHANNEL = "whatsapp"


def _pages(workers: list[DemoWorker]) -> dict[str, dict[str, Any]]:
    return {w.name: w.pages.connectors() for w in workers}


def _transitions(page: dict[str, Any], *, since: float) -> list[str]:
    return [t["state"] for t in page["channels"][_CHANNEL].get("transitions", []) if t["at"] >= since]


def closed_after_probe(states: list[str]) -> bool:
    """True for a trail with an OPEN, a later HALF_OPEN and a CLOSED after that: the probe that closed the breaker."""
    try:
        opened = states.index("OPEN")
        half = states.index("HALF_OPEN", opened)
        states.index("CLOSED", half)
    except ValueError:
        return False
    return True


def _dead_letters(workers: list[DemoWorker]) -> float:
    return sum(w.pages.metric("chat4all_dead_letters_total", source=f"{_CHANNEL}-connector") for w in workers)


def run(ctx: DemoContext, result: StepResult) -> None:
    """Inject the outage on every worker, send, watch the breakers open, lift it, watch them close and READ."""
    n, platform, pace = ctx.narrator, ctx.platform, ctx.pace
    workers = [w for w in platform.live_workers() if _CHANNEL in w.pages.connectors()["channels"]]
    alice = ctx.cast.people["alice"]
    rooms = ctx.group_rooms()
    letters_before = _dead_letters(workers)
    n.code(
        "connectors/breaker.py",
        "connectors/base.py (deliver)",
        "connectors/faults.py",
        "agents/connectors.py",
    )
    for w in workers:
        n.inspector(f"worker {w.name}'s connectors and breakers:", ctx.inspector("/ui/", worker=w.name))
    n.pause()
    injected_at = time.time()
    n.action(
        f"injecting a WhatsApp outage on workers {', '.join(w.name for w in workers)} (POST /connectors/faults)"
    )
    try:
        for w in workers:
            w.pages.set_outage(True)
        n.action(f"alice sends {pace.outage_messages} messages to bob and carol, whose channel is WhatsApp")
        sent = [
            ctx.cast.send(alice, rooms[i % len(rooms)], f"outage #{i + 1}")
            for i in range(pace.outage_messages)
        ]

        def view(done_when: str) -> tuple[RenderableType, bool]:
            pages = _pages(workers)
            ledger = ctx.ledger.ledger(sent)
            shown = Group(
                breakers_table(pages, channel=_CHANNEL, title="the WhatsApp breakers, live"),
                counts_table({f"{len(sent)} sent (aggregate status)": ledger.statuses()}, title=""),
            )
            if done_when == "open":
                done = any(p["channels"][_CHANNEL]["breaker"] == "OPEN" for p in pages.values())
                done = done and len(ledger.stored) == len(sent)
            else:
                done = ledger.complete("READ") and all(
                    p["channels"][_CHANNEL]["breaker"] == "CLOSED" for p in pages.values()
                )
            return shown, done

        opened = watch(n.console, lambda: view("open"), timeout=pace.settle_timeout, interval=0.25)
        n.say("the breaker is OPEN: the connector holds the records, the messages stay SENT")
        watch(n.console, lambda: view("never"), timeout=pace.outage_hold, interval=0.25)
        held = ctx.ledger.ledger(sent)
        progressed = sum(1 for m in held.stored.values() if any(s != "SENT" for s in m.receipts.values()))
    finally:
        lifted_at = time.time()
        n.action("lifting the outage")
        for w in workers:
            w.pages.set_outage(False)
    closed = watch(n.console, lambda: view("closed"), timeout=pace.settle_timeout, interval=0.25)
    pages = _pages(workers)
    ledger = ctx.ledger.ledger(sent)
    trails = {w: _transitions(p, since=injected_at) for w, p in pages.items()}
    opened_on = [w for w, t in trails.items() if "OPEN" in t]
    ctx.check(
        result,
        "breaker opened",
        opened and bool(opened_on),
        f"OPEN on worker(s) {', '.join(opened_on) or 'none'} during the outage",
        opened_on=opened_on,
    )
    ctx.check(
        result,
        "held, not failed",
        progressed == 0 and "FAILED" not in held.statuses(),
        f"while the breaker was open: {held.statuses()}",
        statuses_during=held.statuses(),
    )
    after_lift = {
        w: p["channels"][_CHANNEL]["transitions"][-1]["at"] >= lifted_at
        for w, p in pages.items()
        if w in opened_on and p["channels"][_CHANNEL].get("transitions")
    }
    ctx.check(
        result,
        "OPEN -> HALF_OPEN -> CLOSED",
        bool(opened_on) and all(closed_after_probe(trails[w]) and after_lift.get(w) for w in opened_on),
        "; ".join(f"{w}: {' -> '.join(t)}" for w, t in trails.items() if t) or "no transitions",
        transitions=trails,
    )
    ctx.check(
        result,
        "breakers closed again",
        closed and all(p["channels"][_CHANNEL]["breaker"] == "CLOSED" for p in pages.values()),
        ", ".join(f"{w}: {p['channels'][_CHANNEL]['breaker']}" for w, p in pages.items()),
    )
    letters = _dead_letters(workers) - letters_before
    ctx.check(
        result,
        "backlog drained, nothing lost",
        ledger.complete("READ") and letters == 0,
        f"{ledger.count_all('READ')} of {ledger.sent} READ, {len(ledger.missing)} missing, "
        f"{len(ledger.duplicated)} stored twice, {letters:.0f} dead-lettered",
        read=ledger.count_all("READ"),
        missing=len(ledger.missing),
        duplicated=len(ledger.duplicated),
        dead_lettered=letters,
    )
