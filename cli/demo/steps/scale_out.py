"""Step 2: a second worker joins the consumer group and the partitions move; the assignment before and after."""

from __future__ import annotations

from cli.demo.checkpoints import StepResult
from cli.demo.context import DemoContext
from cli.demo.group import GroupAssignment, source_topics

NAME = "scale-out"
TITLE = "A second worker joins: the partitions move"
TEACHES = (
    "Workers share one Kafka consumer group (the app id). Each topic has 12 partitions and each partition "
    "is processed by exactly one worker; a table is split the same way, so the worker that owns partition 7 "
    "of `status-updates` also owns partition 7 of the receipt-state table. When a worker joins, the group "
    "rebalances: partitions move to the newcomer, which rebuilds their tables from the changelogs, and every "
    "table partition gets a standby copy on the other worker (table_standby_replicas=1)."
)


def _owned_once(assignment: GroupAssignment, topics: list[str], partitions: int) -> dict[str, list[int]]:
    """Per topic, the partitions that do not have exactly one active owner."""
    bad = {}
    for topic in topics:
        owners = assignment.owners(topic)
        wrong = [p for p in range(partitions) if len(owners.get(p, [])) != 1]
        if wrong:
            bad[topic] = wrong
    return bad


def _actives(assignment: GroupAssignment, url: str, topics: list[str]) -> int:
    member = assignment.member(url)
    return sum(len(member.active(t)) for t in topics) if member else 0


def run(ctx: DemoContext, result: StepResult) -> None:
    """Show the assignment, start worker B, show the assignment again."""
    n, settings, platform = ctx.narrator, ctx.settings, ctx.platform
    topics = source_topics(settings)
    a = platform.workers["A"]
    before, _ = ctx.stable_assignment(timeout=ctx.pace.worker_timeout)
    ctx.show_assignment(before, title="assignment before")
    n.code("streams/app.py (consumer group, standby replicas)", "agents/worker.py")
    n.inspector("worker A's overview (assignment, tables, standbys):", ctx.inspector("/ui/"))
    n.pause()
    n.action("starting worker B: `chat4all worker --role all` on a web port and data dir of its own")
    b = platform.start_worker("B", wait=False)
    n.say(f"worker B at {b.url} (data dir {b.process.data_dir}); waiting for the rebalance to finish")
    platform.wait_ready(b)

    def settled(assignment: GroupAssignment) -> bool:
        return _actives(assignment, b.url, topics) > 0 and not _owned_once(
            assignment, topics, settings.topic_partitions
        )

    after, ok = ctx.stable_assignment(timeout=ctx.pace.worker_timeout, until=settled)
    platform.wait_ready(a)
    ctx.show_assignment(after, title="assignment after")
    n.inspector("worker B's overview:", ctx.inspector("/ui/", worker="B"))
    a_before, a_after = _actives(before, a.url, topics), _actives(after, a.url, topics)
    b_after = _actives(after, b.url, topics)
    ctx.check(
        result,
        "B joined the group",
        ok and b_after > 0,
        f"{len(after.members)} workers in group {after.group}; B is active for {b_after} partitions",
        members=len(after.members),
        b_active=b_after,
    )
    ctx.check(
        result,
        "partitions moved from A to B",
        a_after < a_before,
        f"A active for {a_before} partitions before, {a_after} after",
        a_before=a_before,
        a_after=a_after,
    )
    bad = _owned_once(after, topics, settings.topic_partitions)
    ctx.check(
        result,
        "every partition has exactly one owner",
        not bad,
        "each partition of each source topic is active on one worker" if not bad else f"not so: {bad}",
    )
