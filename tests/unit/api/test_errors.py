"""The API's error classes: an invalid query is not an outage."""

from __future__ import annotations

from cassandra import InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable
from cassandra.cluster import NoHostAvailable

from api.errors import DependencyUnavailable, is_outage


def test_invalid_query_errors_are_not_outages() -> None:
    assert not is_outage(InvalidRequest("Key length of 102400 is longer than maximum of 65535"))
    assert not is_outage(ValueError("bad"))
    for outage in (
        Unavailable("down"),
        ReadTimeout("slow"),
        OperationTimedOut("slow"),
        NoHostAvailable("none", {}),
        DependencyUnavailable("x"),
        ConnectionResetError(),
        TimeoutError(),
    ):
        assert is_outage(outage), outage
