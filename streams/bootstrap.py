"""Before a worker starts: create its tables' changelog topics and wait until the broker's metadata shows them.

faust creates changelogs itself, but an agent that starts before the new topic reaches the
cluster metadata crashes with PartitionsMismatch ("changelog has 0 partitions") and faust's
metadata is only refreshed every few minutes. Creating them first (with the very config
faust would use) makes a brand-new app id start cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from mode.utils.times import want_seconds

from chat4all.settings import Settings

logger = logging.getLogger(__name__)


def changelog_specs(app: faust.App) -> dict[str, tuple[int, dict[str, str]]]:
    """Each table changelog of ``app``: name -> (partitions, topic config), as faust would create them."""
    specs: dict[str, tuple[int, dict[str, str]]] = {}
    for table in app.tables.values():
        topic: Any = table.changelog_topic
        flags = [name for name, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on]
        config = {str(k): str(v) for k, v in (topic.config or {}).items()}
        if flags:
            config["cleanup.policy"] = ",".join(flags)
        if topic.retention:
            config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        specs[topic.get_topic_name()] = (topic.partitions or app.conf.topic_partitions, config)
    return specs


async def ensure_changelog_topics(app: faust.App, settings: Settings, *, timeout: float = 60.0) -> None:
    """Create missing changelog topics of ``app`` and wait until all are visible with their partitions."""
    specs = changelog_specs(app)
    if not specs:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=parts,
                replication_factor=settings.replication_factor,
                topic_configs=cfg,
            )
            for name, (parts, cfg) in specs.items()
            if name not in existing
        ]
        if missing:
            logger.info("creating changelog topics: %s", ", ".join(t.name for t in missing))
            try:
                await admin.create_topics(missing)
            except Exception as exc:  # another worker of the same app may have created them first
                logger.info("create_topics: %s", exc)
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics(list(specs))
            counts = {
                d["topic"]: len(d.get("partitions") or []) for d in described if not d.get("error_code")
            }
            if all(counts.get(name) == parts for name, (parts, _) in specs.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"changelog topics not ready: {counts}")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
