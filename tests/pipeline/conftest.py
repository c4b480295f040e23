"""Fixtures of the pipeline integration tests: a Cassandra session on the local stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

from chat4all.cassandra import connect
from chat4all.settings import Settings


@pytest.fixture(scope="session")
def cql(stack: Settings) -> Iterator[Session]:
    session = connect(stack)
    yield session
    session.cluster.shutdown()
