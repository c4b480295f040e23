"""Shared fixtures: settings, and the plugins that start a worker or an API server for a session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

from chat4all.cassandra import connect
from chat4all.settings import Settings, get_settings

# The fixture modules, one per area; a missing or misnamed one stops the test session.
pytest_plugins = ["tests.fixtures.stack", "tests.fixtures.worker", "tests.fixtures.api"]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def cql(stack: Settings) -> Iterator[Session]:
    """A Cassandra session in the platform's keyspace, shared by the test session."""
    session = connect(stack)
    yield session
    session.cluster.shutdown()
