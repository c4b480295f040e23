"""The Faust application at the centre of the pipeline: one app, agents loaded per worker role."""

from __future__ import annotations

import importlib
import logging
from typing import Literal

import faust

from chat4all.settings import Settings, get_settings

logger = logging.getLogger(__name__)

Role = Literal["router", "connectors", "status", "all"]

# Which modules each role imports. A module registers its agents, tables and timers on
# import, so a worker subscribes only to the topics and changelogs of its own role:
# faust's assignor groups co-subscribed topics, so a table's changelog follows the
# agent that writes it even when workers of different roles share one consumer group.
ROLE_MODULES: dict[str, tuple[str, ...]] = {
    "router": ("agents.router",),
    "connectors": ("agents.connectors",),
    "status": ("agents.status_tracker",),
}
ROLE_MODULES["all"] = ROLE_MODULES["router"] + ROLE_MODULES["connectors"] + ROLE_MODULES["status"]


def create_app(settings: Settings) -> faust.App:
    """A faust.App configured from settings (broker, partitions, store, guarantees, timeouts)."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # RocksDB through rocksdict; the block cache is capped per table in tables/.
        store="rocksdb://",
        # The same number the stack creates topics with: a table fed by a topic with a
        # different count raises PartitionsMismatch.
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        # Fast failover: a dead worker's partitions move after this (faust's default is 60 s).
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        processing_guarantee=settings.processing_guarantee,
        web_port=settings.web_port,
        datadir=str(settings.data_dir),
        # Tables are read per event; a standby replica makes a failover's recovery short.
        table_standby_replicas=1,
        # Our records are JSON without faust metadata; the API produces them with aiokafka.
        value_serializer="json",
        autodiscover=False,
        # A new consumer group starts at the beginning: nothing published before the
        # first worker started is skipped.
        consumer_auto_offset_reset="earliest",
        # Sends are not awaited one by one (streams/inflight.py): a few ms of linger turn the
        # records of many events into one produce request per partition leader.
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=256 * 1024,
    )


app = create_app(get_settings())


def load_role(role: Role) -> None:
    """Import the agents of a worker role (router, connectors, status or all) plus shared services."""
    importlib.import_module("streams.health")
    importlib.import_module("streams.metrics")
    for module in ROLE_MODULES[role]:
        importlib.import_module(module)
    logger.info("worker role %s: loaded %s", role, ", ".join(ROLE_MODULES[role]))
