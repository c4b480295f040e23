"""The schema and its data migrations on a keyspace of their own: legacy upload sessions move to upload_sessions, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chat4all.cassandra import connect
from chat4all.settings import Settings
from cli.stack.bootstrap import apply_schema
from cli.stack.migrations import move_legacy_uploads

pytestmark = pytest.mark.integration

# The table as it was before upload ids were scoped per uploader.
LEGACY_UPLOADS = """CREATE TABLE {ks}.uploads (
  upload_id text PRIMARY KEY, uploader_id uuid, conversation_id uuid, file_id uuid, filename text,
  mime_type text, size bigint, sha256 text, object_key text, s3_upload_id text,
  parts list<frozen<tuple<int, text, bigint>>>, tail_bytes bigint, bytes_received bigint, state text,
  created_at timestamp, expires_at timestamp)"""


def test_legacy_upload_sessions_move_to_upload_sessions(stack: Settings) -> None:
    ks = f"c4a_migration_{uuid.uuid4().hex[:8]}"
    settings = stack.model_copy(update={"cassandra_keyspace": ks})
    admin = connect(stack)
    try:
        admin.execute(
            f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
            timeout=60,
        )
        admin.execute(LEGACY_UPLOADS.format(ks=ks), timeout=60)
        uploader, file_id = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC).replace(microsecond=0)
        insert = admin.prepare(
            f"INSERT INTO {ks}.uploads (upload_id, uploader_id, conversation_id, file_id, filename, size, sha256,"
            " object_key, s3_upload_id, parts, tail_bytes, bytes_received, state, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        admin.execute(
            insert,
            (
                "old-upload",
                uploader,
                uuid.uuid4(),
                file_id,
                "a.bin",
                20_000_000,
                "0" * 64,
                f"2026/12/01/{file_id}",
                "s3-id",
                [(1, "etag-1", 8_388_608)],
                1000,
                8_389_608,
                "receiving",
                now,
                now + timedelta(hours=1),
            ),
            timeout=30,
        )

        apply_schema(settings)  # creates upload_sessions, then moves the row

        row = admin.execute(
            f"SELECT * FROM {ks}.upload_sessions WHERE uploader_id = %s AND upload_id = %s",
            (uploader, "old-upload"),
        ).one()
        assert row is not None and row.file_id == file_id and row.s3_upload_id == "s3-id"
        assert [tuple(p) for p in row.parts] == [(1, "etag-1", 8_388_608)]
        assert (row.tail_bytes, row.bytes_received, row.state) == (1000, 8_389_608, "receiving")
        assert row.expires_at.replace(tzinfo=UTC) == now + timedelta(hours=1)
        assert admin.execute(f"SELECT * FROM {ks}.uploads").one() is None
        # A second run finds nothing to move and leaves the moved session alone.
        assert move_legacy_uploads(admin, keyspace=ks) == 0
        assert admin.execute(f"SELECT count(*) FROM {ks}.upload_sessions").one().count == 1
    finally:
        admin.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)
        admin.cluster.shutdown()
