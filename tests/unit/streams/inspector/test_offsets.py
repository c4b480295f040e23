"""/ui/'s recovery progress: changelog records a partition has not applied, from faust's persisted offset."""

from __future__ import annotations

from streams.inspector.worker_page import records_behind


def test_a_partition_that_applied_its_last_changelog_record_is_not_behind() -> None:
    # The end offset is the one after the last record: records 0..6, the last applied is 6.
    assert records_behind(changelog_end=7, local_offset=6) == 0


def test_recovery_progress_counts_the_records_after_the_last_applied_one() -> None:
    assert records_behind(changelog_end=100, local_offset=39) == 60


def test_an_empty_changelog_partition_has_no_local_offset_and_is_not_behind() -> None:
    assert records_behind(changelog_end=0, local_offset=None) == 0


def test_a_partition_that_applied_nothing_is_behind_by_the_whole_changelog() -> None:
    assert records_behind(changelog_end=25, local_offset=None) == 25


def test_without_the_end_offset_progress_is_unknown() -> None:
    assert records_behind(changelog_end=None, local_offset=4) is None
