"""The write batcher's filter for Cassandra's per-batch size warnings (chat4all/cassandra_batch.py)."""

from __future__ import annotations

import logging

from chat4all.cassandra_batch import _BatchWarnings


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("cassandra.protocol", logging.WARNING, __file__, 1, message, None, None)


def test_batch_size_warnings_are_dropped_after_one_notice_and_other_warnings_pass(caplog):
    flt = _BatchWarnings()
    with caplog.at_level(logging.WARNING, logger="chat4all.cassandra_batch"):
        assert not flt.filter(_record("Server warning: Unlogged batch covering 32 partitions detected"))
        assert not flt.filter(
            _record("Server warning: Batch for [t] is of size 7440, exceeding specified threshold")
        )
    assert flt.filter(_record("Server warning: Read 5000 live rows and 10000 tombstone cells"))
    notices = [r for r in caplog.records if r.name == "chat4all.cassandra_batch"]
    assert len(notices) == 1 and "batch_size_warn_threshold" in notices[0].getMessage()
