"""`chat4all dlq list|replay`: show dead letters with their reason, put chosen ones back on their topic."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import click

from chat4all import topic_names as names
from chat4all.clock import as_utc
from chat4all.settings import Settings, get_settings
from chat4all.topic_reading import read_topic
from cli.safe import shown


@dataclass
class Letter:
    """One dead letter and where it sits in the dead-letters topic (``id`` = partition:offset)."""

    id: str
    key: str | None
    body: dict[str, Any]


async def _partitions(settings: Settings, topic: str) -> list[int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [p["partition"] for d in described if not d.get("error_code") for p in d.get("partitions") or []]


async def read_dead_letters(settings: Settings, *, timeout: float = 10.0) -> list[Letter]:
    """Every dead letter currently in the topic, oldest first per partition (no consumer group)."""
    topic = names.topic_name(settings, names.DEAD_LETTERS)
    records = await read_topic(
        bootstrap=settings.kafka_bootstrap,
        topic=topic,
        partitions=await _partitions(settings, topic),
        timeout=timeout,
    )
    letters: list[Letter] = []
    for rec in records:
        try:
            body = json.loads(rec.value)
        except (TypeError, ValueError):
            body = {
                "reason": "unreadable dead letter",
                "payload": (rec.value or b"").decode("utf-8", "replace"),
            }
        key = rec.key.decode("utf-8", "replace") if rec.key else None
        letters.append(Letter(id=f"{rec.partition}:{rec.offset}", key=key, body=body))
    return letters


def _matches(letter: Letter, *, reason: str | None, topic: str | None, message_id: str | None) -> bool:
    body = letter.body
    return (
        (reason is None or reason.lower() in str(body.get("reason", "")).lower())
        and (topic is None or body.get("topic") == topic)
        and (message_id is None or body.get("message_id") == message_id)
    )


async def replay(settings: Settings, letters: list[Letter]) -> int:
    """Publish each letter's original payload to its original topic with its original key; returns the count."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = []
        for letter in letters:
            body = letter.body
            key = body.get("key")
            futures.append(
                await producer.send(
                    body["topic"],
                    key=key.encode() if key else None,
                    value=str(body["payload"]).encode(),
                    headers=[("chat4all-replayed-from", letter.id.encode())],
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(letters)


@click.group("dlq")
def dlq() -> None:
    """Dead letters: records the pipeline gave up on, with the reason."""


_filters = [
    click.option("--reason", default=None, help="Only letters whose reason contains this text."),
    click.option(
        "--topic", default=None, help="Only letters from this topic (e.g. messages, whatsapp-outbound)."
    ),
    click.option("--message-id", default=None, help="Only letters of this message."),
]


def _with_filters(fn):  # type: ignore[no-untyped-def]
    for option in reversed(_filters):
        fn = option(fn)
    return fn


@dlq.command("list")
@_with_filters
@click.option("--limit", default=50, show_default=True, help="Show the newest N matching letters.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def list_cmd(
    reason: str | None, topic: str | None, message_id: str | None, limit: int, as_json: bool
) -> None:
    """List dead letters: id (partition:offset), when, source topic, reason, message id."""
    settings = get_settings()
    letters = [
        x
        for x in asyncio.run(read_dead_letters(settings))
        if _matches(x, reason=reason, topic=topic, message_id=message_id)
    ]
    letters.sort(key=lambda x: x.body.get("at_ms") or 0)
    shown = letters[-limit:] if limit else letters
    if as_json:
        for letter in shown:
            click.echo(json.dumps({"id": letter.id, **letter.body}))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"dead letters ({len(shown)} of {len(letters)} matching)")
    for col in ("id", "at (UTC)", "topic", "reason", "attempts", "message_id"):
        table.add_column(col)
    for letter in shown:
        b = letter.body
        at = as_utc(b.get("at_ms") or 0).strftime("%Y-%m-%d %H:%M:%S")
        # Text cells: a reason can quote what a client sent, and rich would read [style] markup in a str.
        cells = (
            letter.id,
            at,
            b.get("topic"),
            b.get("reason"),
            b.get("attempts", ""),
            b.get("message_id") or "",
        )
        table.add_row(*(Text(shown(cell)) for cell in cells))
    Console().print(table)


@dlq.command("replay")
@click.argument("ids", nargs=-1)
@_with_filters
@click.option("--all", "replay_all", is_flag=True, help="Replay every letter matching the filters.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed.")
def replay_cmd(
    ids: tuple[str, ...],
    reason: str | None,
    topic: str | None,
    message_id: str | None,
    replay_all: bool,
    dry_run: bool,
) -> None:
    """Put the letters with these IDS (partition:offset), or --all matching, back on their original topic."""
    if not ids and not replay_all:
        raise click.UsageError("name letter ids (see `chat4all dlq list`) or pass --all with filters")
    settings = get_settings()
    letters = [
        x
        for x in asyncio.run(read_dead_letters(settings))
        if _matches(x, reason=reason, topic=topic, message_id=message_id)
    ]
    if ids:
        wanted = set(ids)
        letters = [x for x in letters if x.id in wanted]
        missing = wanted - {x.id for x in letters}
        if missing:
            raise click.ClickException(f"no such dead letter(s): {', '.join(sorted(missing))}")
    for letter in letters:
        click.echo(
            f"{'would replay' if dry_run else 'replaying'} {letter.id} -> {shown(letter.body.get('topic'))} ({shown(letter.body.get('reason'))})"
        )
    if not dry_run:
        count = asyncio.run(replay(settings, letters))
        click.echo(f"replayed {count} record(s)")
