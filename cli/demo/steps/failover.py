"""Step 3: worker B is killed with SIGKILL while messages flow; A takes over and nothing is lost or stored twice."""

from __future__ import annotations

import time

from rich.console import RenderableType

from cli.demo.checkpoints import StepResult
from cli.demo.context import DemoContext
from cli.demo.displays import counts_table
from cli.demo.group import GroupAssignment, source_topics
from cli.demo.live import watch
from cli.demo.polling import poll
from cli.demo.traffic import SteadySender

NAME = "failover"
TITLE = "SIGKILL one worker mid-flow: the survivor takes over, nothing lost or stored twice"
TEACHES = (
    "A worker that dies without a word (SIGKILL: no shutdown, no last commit) stops heartbeating; after the "
    "session timeout the group gives its partitions to the survivor. The survivor resumes each partition at "
    "its last committed offset, so records the dead worker had processed but not committed are processed "
    "again: the router's dedup table (recovered from its changelog, or already there as a standby) drops the "
    "replayed messages, the Cassandra writes are upserts, and receipts only move forward. At-least-once "
    "delivery plus idempotent effects: nothing lost, nothing stored twice. The demo kills B, the worker it "
    "started, never A: A is the `make run` worker whose inspector the audience watches."
)


def run(ctx: DemoContext, result: StepResult) -> None:
    """Send steadily, SIGKILL worker B mid-flow, wait for A's takeover, then count Cassandra's rows."""
    n, settings, platform, pace = ctx.narrator, ctx.settings, ctx.platform, ctx.pace
    topics = source_topics(settings)
    a, b = platform.workers["A"], platform.workers["B"]
    assignment, _ = ctx.stable_assignment(timeout=pace.worker_timeout)
    b_member = assignment.member(b.url)
    b_partitions = set(b_member.active(settings.topic_prefix + "messages")) if b_member else set()
    # B must be routing when it dies: at least one room in its partitions of `messages`.
    ctx.room_in(b_partitions)
    rooms = ctx.group_rooms()
    people = [ctx.cast.people[p] for p in ("alice", "bob", "carol")]
    routes = [(person, room) for room in rooms for person in people]
    replays_before = a.pages.metric("chat4all_router_duplicates_total")
    n.code("streams/takeover.py", "agents/router.py", "tables/dedup.py", "streams/inflight.py")
    n.pause()
    n.action(f"sending {pace.flow_messages} messages at {pace.flow_rate:.0f}/s into {len(rooms)} group rooms")
    sender = SteadySender(
        ctx.cast, routes=routes, count=pace.flow_messages, rate=pace.flow_rate, label="failover"
    ).start()
    # Mid-flow: B has routed some of them and a third are out.
    poll(
        lambda: (
            b.pages.metric("chat4all_messages_routed_total") > 0
            and len(sender.sent) >= pace.flow_messages // 3
        ),
        timeout=pace.settle_timeout,
    )
    before_kill = len(sender.sent)
    b_routed = b.pages.metric("chat4all_messages_routed_total")
    n.action(f"SIGKILL worker B (pid {b.process.proc.pid}) after {before_kill} messages; the sending goes on")
    killed_at = time.monotonic()
    platform.kill("B")

    def taken_over(assignment: GroupAssignment) -> bool:
        member = assignment.member(a.url)
        return (
            assignment.member(b.url) is None
            and member is not None
            and all(len(member.active(t)) == settings.topic_partitions for t in topics)
        )

    after, took_over = ctx.stable_assignment(timeout=pace.settle_timeout, until=taken_over)
    takeover_seconds = time.monotonic() - killed_at
    ctx.show_assignment(after, title="assignment after the kill")
    n.say(
        f"the group noticed B's silence and A took over its partitions {takeover_seconds:.1f} s after the kill"
    )
    sender.join(timeout=pace.settle_timeout)
    sent = sender.sent
    n.inspector("A's overview, now active for every partition:", ctx.inspector("/ui/"))

    def render() -> tuple[RenderableType, bool]:
        ledger = ctx.ledger.ledger(sent)
        view = counts_table(
            {f"{len(sent)} sent (aggregate status)": ledger.statuses()},
            title="the messages in Cassandra, live",
        )
        return view, ledger.complete("READ")

    watch(n.console, render, timeout=pace.settle_timeout, interval=0.5)
    ledger = ctx.ledger.ledger(sent)
    replays = a.pages.metric("chat4all_router_duplicates_total") - replays_before
    ctx.check(
        result,
        "sent across the kill",
        before_kill > 0 and b_routed > 0 and len(sent) > before_kill and not sender.errors,
        f"{before_kill} messages before the kill (B had routed {b_routed:.0f}), {len(sent) - before_kill} after"
        + (f"; send errors: {sender.errors[:1]}" if sender.errors else ""),
        sent=len(sent),
        before_kill=before_kill,
        routed_by_b=b_routed,
    )
    ctx.check(
        result,
        "the survivor took over",
        took_over,
        f"A active for all {settings.topic_partitions} partitions of each topic, {takeover_seconds:.1f} s after the kill",
        seconds=round(takeover_seconds, 1),
    )
    ctx.check(
        result,
        "nothing lost",
        not ledger.missing,
        f"{len(ledger.stored)} of {ledger.sent} messages stored",
        missing=len(ledger.missing),
    )
    ctx.check(
        result,
        "nothing stored twice",
        not ledger.duplicated and all(m.rows == 1 for m in ledger.stored.values()),
        f"one messages row per message id; the dedup table dropped {replays:.0f} replayed message(s)",
        duplicated=len(ledger.duplicated),
        replays_dropped=replays,
    )
    read = ledger.count_all("READ")
    ctx.check(
        result,
        "every receipt READ",
        read == ledger.sent,
        f"{read} of {ledger.sent} messages with every receipt READ",
        read=read,
    )
