"""Step 1: two users and one message, its receipt advancing SENT -> DELIVERED -> READ live."""

from __future__ import annotations

from rich.console import RenderableType

from cli.demo.checkpoints import StepResult
from cli.demo.context import DemoContext
from cli.demo.displays import PROGRESS, receipts_table
from cli.demo.group import key_partition, read_assignment
from cli.demo.live import watch

NAME = "first-message"
TITLE = "Two users, one message: SENT -> DELIVERED -> READ"
TEACHES = (
    "A message is an event on the Kafka topic `messages`, keyed by its conversation. The router agent "
    "remembers its id (dedup table), stores it in Cassandra as SENT and fans out one outbound record per "
    "recipient and channel. The WhatsApp connector sends it and writes the DELIVERED and READ receipts the "
    "network will report into a durable schedule table; the status tracker applies each receipt to the "
    "message's state machine (another table) and writes Cassandra. Every table write goes to a changelog "
    "topic on Kafka first: the changelogs, not the worker's disk, are the truth."
)


def run(ctx: DemoContext, result: StepResult) -> None:
    """Register alice and bob, send one message and watch its receipt reach READ."""
    n, settings = ctx.narrator, ctx.settings
    alice = ctx.person("alice", channels={"instagram": "@alice"})
    bob = ctx.person("bob", channels={"whatsapp": "+5511990000001"})
    conversation = ctx.cast.private_conversation(alice, bob)
    partition = key_partition(conversation, partitions=settings.topic_partitions)
    owner = read_assignment(settings).owner(settings.topic_prefix + "messages", partition)
    n.say(
        f"alice and bob's conversation {conversation} lives in partition {partition} of `messages`, "
        f"owned by worker {ctx.platform.names().get(owner or '', '?')}."
    )
    n.code("api/services/messages.py (SendMessage)", "agents/router.py", "tables/dedup.py")
    n.pause()
    n.action("alice sends bob a message through the API (MessageService.SendMessage)")
    sent = ctx.cast.send(alice, conversation, "Hi Bob! This message is an event on Kafka.")
    n.say(f"message id {sent.message_id}")
    n.inspector(
        "its state machine, receipts and pending schedule:", ctx.inspector(f"/ui/messages/{sent.message_id}")
    )
    n.code(
        "agents/connectors.py",
        "tables/scheduled_receipts.py",
        "tables/durable_schedule.py",
        "agents/status_tracker.py",
        "tables/receipt_states.py",
        "tables/state_machine.py",
    )
    receipt_key = f"{bob.user_id}:whatsapp"
    seen: list[str] = []

    def render() -> tuple[RenderableType, bool]:
        stored = ctx.ledger.ledger([sent]).stored.get(sent.message_id)
        status = stored.receipts.get(receipt_key) if stored else None
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        done = stored is not None and stored.all_receipts("READ")
        return receipts_table(
            stored,
            people={p.user_id: p.name for p in ctx.cast.people.values()},
            title=f"message {sent.message_id} (Cassandra, live)",
        ), done

    reached = watch(n.console, render, timeout=ctx.pace.settle_timeout, interval=0.1)
    ledger = ctx.ledger.ledger([sent])
    stored = ledger.stored.get(sent.message_id)
    ctx.check(
        result,
        "stored once",
        stored is not None and not ledger.duplicated and stored.rows == 1,
        f"{stored.rows if stored else 0} messages row(s) with id {sent.message_id}",
        rows=stored.rows if stored else 0,
    )
    in_order = seen == sorted(seen, key=lambda s: PROGRESS.index(s) if s in PROGRESS else 99)
    ctx.check(
        result,
        "receipt reached READ",
        reached and in_order,
        f"statuses seen in order: {' -> '.join(seen) or 'none'}",
        seen=seen,
        message_id=sent.message_id,
    )
    if stored is not None:
        delivered, read = stored.delivered_at.get(receipt_key), stored.read_at.get(receipt_key)
        ctx.check(
            result,
            "delivered before read",
            delivered is not None and read is not None and delivered <= read,
            f"delivered at {delivered}, read at {read}",
        )
