"""Per-channel schedule tables of the simulated connectors: due DELIVERED/READ receipts (tables/durable_schedule.py layout)."""

from __future__ import annotations

import faust

from chat4all.settings import Settings
from tables.options import rocksdb_options


def scheduled_receipts_table(app: faust.App, settings: Settings, channel: str) -> faust.Table:
    """The changelog-backed schedule of one channel's connector (same partitions as its outbound topic)."""
    return app.Table(
        f"{channel}-schedule",
        default=None,
        key_type=str,
        partitions=settings.topic_partitions,
        options=rocksdb_options(),
        help=f"{channel} connector: scheduled DELIVERED/READ receipts by 100 ms bucket ('p<partition>:b:<bucket>').",
    )
