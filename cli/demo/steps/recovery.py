"""Step 4: a worker restarted with an empty data dir gets its tables back from the changelogs; pending READs still fire."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType

from chat4all import topic_names as names
from chat4all.wire import DELIVERY_CHANNELS
from cli.demo.cast import Sent
from cli.demo.checkpoints import StepResult
from cli.demo.context import DemoContext
from cli.demo.displays import counts_table
from cli.demo.group import key_partition, partition_ranges, source_topics, uncommitted
from cli.demo.ledger import StoredMessage
from cli.demo.live import watch
from cli.demo.polling import poll

NAME = "recovery"
TITLE = "Restart a worker with an empty data dir: the tables come back from the changelogs"
TEACHES = (
    "A worker's RocksDB files are only a cache. Every table write (the connector's schedule of DELIVERED "
    "and READ receipts, the receipt states, the dedup window) was first a record of the table's changelog "
    "topic. A worker that starts with an empty data dir reads its partitions' changelogs back before it "
    "processes anything, so receipts scheduled before the crash still fire at their time: nothing is sent "
    "again, nothing is forgotten."
)

# A message's receipts are keyed by its id: its outbound record, its schedule entry and its
# status updates are all in the partition its id hashes to.
_SCHEDULE_TOPIC = names.outbound_topic("whatsapp")
_SEND_ROUNDS = 3


def _sends(ctx: DemoContext, name: str) -> float:
    return ctx.platform.workers[name].pages.metric("chat4all_connector_sends_total", outcome="sent")


def _outbound_uncommitted(ctx: DemoContext) -> int:
    """Records of every channel's outbound topic the group has not committed yet."""
    settings = ctx.settings
    topics = [settings.topic_prefix + names.outbound_topic(c) for c in DELIVERY_CHANNELS]
    return uncommitted(settings, topics, list(range(settings.topic_partitions)))


def _on_the_way(message: StoredMessage) -> bool:
    return bool(message.receipts) and all(s in ("DELIVERED", "READ") for s in message.receipts.values())


def _recovered_tables(overview: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per table, from a worker's /ui/ JSON: active partitions, those with a changelog, those caught up with it."""
    out = {}
    for table in overview.get("tables", []):
        active = [p for p in table["partitions"] if p["role"] == "active"]
        logged = [p for p in active if (p.get("changelog_end") or 0) > 0]
        out[table["name"]] = {
            "active": len(active),
            "with_changelog": len(logged),
            "caught_up": sum(1 for p in logged if p.get("behind") is not None and p["behind"] <= 0),
            "estimated_entries": sum(p.get("estimated_entries") or 0 for p in active),
        }
    return out


def run(ctx: DemoContext, result: StepResult) -> None:
    """Start B with a long READ delay, send, kill B once the READs are scheduled, wipe and restart it, watch READ."""
    n, settings, platform, pace = ctx.narrator, ctx.settings, ctx.platform, ctx.pace
    topics = source_topics(settings)
    schedule_topic = settings.topic_prefix + _SCHEDULE_TOPIC
    lo, hi = pace.pending_read_delay_ms
    n.action(
        f"starting worker B again, its simulated network reporting READ {lo / 1000:.0f}-{hi / 1000:.0f} s after DELIVERED"
    )
    b = platform.start_worker("B", env={"CHAT4ALL_READ_DELAY_MS": f"[{lo},{hi}]"})
    assignment, _ = ctx.stable_assignment(
        timeout=pace.worker_timeout,
        until=lambda g: (m := g.member(b.url)) is not None and bool(m.active(schedule_topic)),
    )
    b_partitions = set(assignment.member(b.url).active(schedule_topic)) if assignment.member(b.url) else set()
    ctx.show_assignment(assignment, title="assignment with B back")

    alice = ctx.cast.people["alice"]
    rooms = ctx.group_rooms()
    pending: list[Sent] = []
    everything: list[Sent] = []
    for _ in range(_SEND_ROUNDS):
        n.action(f"alice sends {pace.pending_messages} messages to bob and carol (WhatsApp)")
        batch = [
            ctx.cast.send(alice, rooms[i % len(rooms)], f"recovery #{i + 1}")
            for i in range(pace.pending_messages)
        ]
        everything += batch
        pending += [
            s
            for s in batch
            if key_partition(s.message_id, partitions=settings.topic_partitions) in b_partitions
        ]
        if pending:
            break
    partitions = sorted({key_partition(s.message_id, partitions=settings.topic_partitions) for s in pending})
    n.say(
        f"{len(pending)} of them have their receipts in B's partitions {partition_ranges(partitions)} of "
        f"`{_SCHEDULE_TOPIC}`: once DELIVERED, their READ waits in B's schedule table"
    )
    n.code("agents/connectors.py (fire_due)", "tables/scheduled_receipts.py", "tables/durable_schedule.py")
    if pending:
        n.inspector("one of them:", ctx.inspector(f"/ui/messages/{pending[0].message_id}"))
    n.inspector("B's schedule table:", ctx.inspector("/ui/tables/whatsapp-schedule", worker="B"))
    # Every send done (so none happens after the kill), B's READs still to come.
    poll(
        lambda: (
            (ledger := ctx.ledger.ledger(everything))
            and not ledger.missing
            and all(_on_the_way(m) for m in ledger.stored.values())
        ),
        timeout=pace.settle_timeout,
    )
    # Once the group has committed every outbound record, only the tables know what is left to do.
    _, committed = poll(
        lambda: _outbound_uncommitted(ctx) == 0,
        timeout=pace.commit_wait,
        interval=0.5,
    )
    n.say(
        "all DELIVERED, and the workers have committed their offsets of the outbound topics "
        "(faust commits every 2.8 s)"
        if committed
        else f"not every outbound offset is committed after {pace.commit_wait:.0f} s: "
        "the rebalances after the kill may send those records again (at least once)"
    )
    at_kill = ctx.ledger.ledger(pending)
    waiting = [m for m in at_kill.stored.values() if m.all_receipts("DELIVERED")]
    sends_before = _sends(ctx, "A")
    # At least once: the rebalances after the kill resume every moved or revoked partition (A's
    # too) at its last committed offset, so what the group had not committed may be sent again,
    # and nothing else (of every channel: the sends counted are all of them).
    not_committed = _outbound_uncommitted(ctx)

    n.action(f"SIGKILL worker B (pid {b.process.proc.pid}) with {len(waiting)} READs pending in its tables")
    platform.kill("B")
    size = platform.data_dir_bytes("B")
    n.action(f"wiping B's data dir {b.process.data_dir} ({size / 1024:.0f} KiB of RocksDB tables)")
    n.action("starting B again on the same web port with the empty data dir")
    b = platform.restart_empty("B")

    def render() -> tuple[RenderableType, bool]:
        ledger = ctx.ledger.ledger(pending)
        return (
            counts_table(
                {f"{len(pending)} pending at the kill": ledger.statuses()}, title="their receipts, live"
            ),
            ledger.complete("READ"),
        )

    fired = watch(n.console, render, timeout=pace.settle_timeout, interval=0.5)
    after, _ = ctx.stable_assignment(timeout=pace.worker_timeout)
    ctx.show_assignment(after, title="assignment after the restart")
    on_b = [p for p in partitions if after.owner(schedule_topic, p) == b.url]
    n.say(
        f"of the partitions that held them, B owns {partition_ranges(on_b)} again (rebuilt into its empty data dir "
        f"from `{settings.app_id}-whatsapp-schedule-changelog`); A fires the others from its standby copy of the "
        "same changelog"
    )
    n.inspector("B's overview (tables recovered, changelog offsets):", ctx.inspector("/ui/", worker="B"))
    tables = _recovered_tables(b.pages.overview())
    ledger = ctx.ledger.ledger(pending)
    resent_by = {"A": _sends(ctx, "A") - sends_before, "B": _sends(ctx, "B")}
    resent = sum(resent_by.values())
    ctx.check(
        result,
        "READs pending at the kill",
        len(waiting) > 0,
        f"{len(waiting)} of the {len(pending)} messages B sent DELIVERED, their READ due "
        f"{lo / 1000:.0f}-{hi / 1000:.0f} s later, in B's tables",
        pending=len(waiting),
        sent_to_b=len(pending),
        statuses_at_kill=at_kill.statuses(),
    )
    restarted_assignment = after.member(b.url)
    b_active = sum(len(restarted_assignment.active(t)) for t in topics) if restarted_assignment else 0
    ctx.check(
        result,
        "B restarted empty and owns partitions again",
        size > 0 and b_active > 0,
        f"wiped {size / 1024:.0f} KiB; B now active for {b_active} partitions",
        wiped_bytes=size,
        b_active=b_active,
    )
    schedule = tables.get("whatsapp-schedule", {})
    ctx.check(
        result,
        "B's tables rebuilt from the changelogs",
        bool(schedule.get("with_changelog"))
        and all(t["caught_up"] == t["with_changelog"] for t in tables.values()),
        ", ".join(f"{name}: {t['caught_up']}/{t['with_changelog']}" for name, t in tables.items())
        + " active partitions caught up with their changelog (inspector /ui/)",
        tables=tables,
    )
    ctx.check(
        result,
        "the pending READs fired",
        fired and ledger.complete("READ"),
        f"{ledger.count_all('READ')} of {ledger.sent} messages READ, each stored once",
        read=ledger.count_all("READ"),
        duplicated=len(ledger.duplicated),
    )
    ctx.check(
        result,
        "nothing sent again",
        resent <= not_committed,
        f"{resent:.0f} connector sends after the kill, {not_committed} outbound records (every channel) "
        "the group had not committed: "
        "the READs came from the recovered schedule",
        resent=resent,
        resent_by=resent_by,
        committed_before_kill=committed,
        not_committed=not_committed,
    )
