"""What `stack up` does once the servers answer: CQL schema, Kafka topics, the S3 bucket."""

from __future__ import annotations

import asyncio
import re
from string import Template

from chat4all.settings import REPO_ROOT, Settings
from chat4all.topic_names import topic_name, topic_specs

SCHEMA_FILE = REPO_ROOT / "cql" / "schema.cql"


def schema_statements(settings: Settings) -> list[str]:
    """The statements of cql/schema.cql with keyspace and replication factor from settings."""
    text = Template(SCHEMA_FILE.read_text()).substitute(
        keyspace=settings.cassandra_keyspace, replication_factor=settings.cassandra_replication_factor
    )
    text = re.sub(r"--[^\n]*", "", text)  # the file's comments hold no ';' worth keeping
    return [s.strip() for s in text.split(";") if s.strip()]


def apply_schema(settings: Settings) -> int:
    """Apply every schema statement (all idempotent), then the data migrations; returns how many statements ran."""
    from chat4all.cassandra import cluster as make_cluster
    from cli.stack.migrations import move_legacy_uploads

    cluster = make_cluster(settings)
    try:
        session = cluster.connect()
        statements = schema_statements(settings)
        for stmt in statements:
            session.execute(stmt, timeout=60)
        cluster.refresh_schema_metadata()
        move_legacy_uploads(session, keyspace=settings.cassandra_keyspace)
        return len(statements)
    finally:
        cluster.shutdown()


async def _create_topics(settings: Settings) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = {topic_name(settings, spec.name): spec for spec in topic_specs(settings)}
        wanted = [
            NewTopic(
                name=name,
                num_partitions=spec.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"retention.ms": str(spec.retention_ms)},
            )
            for name, spec in specs.items()
            if name not in existing
        ]
        if wanted:
            await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()


def create_topics(settings: Settings) -> list[str]:
    """Create the platform's topics that do not exist yet; returns the names created."""
    return asyncio.run(_create_topics(settings))


def create_bucket(settings: Settings) -> bool:
    """Create the files bucket if missing; True if it was created."""
    from chat4all.s3 import s3_client

    client = s3_client(settings)
    if client.bucket_exists(settings.s3_bucket):
        return False
    client.make_bucket(settings.s3_bucket)
    return True
