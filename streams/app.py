"""The Faust application at the centre of the pipeline, configured from settings (agents/worker.py assembles a worker on it)."""

from __future__ import annotations

import faust

from chat4all.producing import CachedPartitioner
from chat4all.settings import Settings


def canonical_url(settings: Settings) -> str:
    """The URL this worker's web server is reached at: http://<web_host>:<web_port>."""
    host = settings.web_host
    if ":" in host and not host.startswith("["):  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}"


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
        # Faust binds every interface by default, and the web server's pages (tables, faults)
        # are for operators and the platform's own processes: listen where settings say.
        web_bind=settings.web_bind,
        # What other workers (table routing) and Prometheus use to reach this one.
        web_host=settings.web_host,
        canonical_url=canonical_url(settings),
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
        # murmur2 as aiokafka's default, each key's hash computed once (chat4all/producing.py).
        producer_partitioner=CachedPartitioner(),
    )
