"""Data migrations `stack bootstrap` runs after the schema: each idempotent, each safe to run again."""

from __future__ import annotations

import logging

from cassandra.cluster import Session
from cassandra.query import SimpleStatement

logger = logging.getLogger(__name__)

_UPLOAD_COLUMNS = (
    "uploader_id, upload_id, conversation_id, file_id, filename, mime_type, size, sha256, object_key, "
    "s3_upload_id, parts, tail_bytes, bytes_received, state, created_at, expires_at"
)


def move_legacy_uploads(session: Session, *, keyspace: str) -> int:
    """Move the rows of the old ``uploads`` table into ``upload_sessions``; returns how many moved.

    The old table is keyed by upload_id alone, the new one by uploader and upload_id. Each row is
    copied with IF NOT EXISTS (a session the new code already has wins), then deleted from the old
    table, so a second run finds nothing to do. The old table stays, empty.
    """
    table = session.cluster.metadata.keyspaces.get(keyspace)
    if table is None or "uploads" not in table.tables:
        return 0
    copy = session.prepare(
        f"INSERT INTO {keyspace}.upload_sessions ({_UPLOAD_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
    )
    drop = session.prepare(f"DELETE FROM {keyspace}.uploads WHERE upload_id = ?")
    moved = 0
    rows = session.execute(
        SimpleStatement(f"SELECT {_UPLOAD_COLUMNS} FROM {keyspace}.uploads", fetch_size=500), timeout=60
    )
    for row in rows:  # the driver fetches further pages as the loop goes
        if row.uploader_id is None:  # a row without an owner cannot be resumed by anyone
            logger.warning("legacy upload %r has no uploader; deleted", row.upload_id)
        else:
            session.execute(copy, tuple(row), timeout=60)
            moved += 1
        session.execute(drop, (row.upload_id,), timeout=60)
    if moved:
        logger.info(
            "moved %d upload sessions from %s.uploads to %s.upload_sessions", moved, keyspace, keyspace
        )
    return moved
