"""Shared fixtures: settings, and the plugins that start a worker or an API server for a session."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

from chat4all.cassandra import connect
from chat4all.settings import Settings, get_settings

# Fixture modules written per area; each is registered once it exists in the tree.
_FIXTURE_MODULES = ["tests.fixtures.stack", "tests.fixtures.worker", "tests.fixtures.api"]
pytest_plugins = [m for m in _FIXTURE_MODULES if importlib.util.find_spec(m) is not None]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def cql(stack: Settings) -> Iterator[Session]:
    """A Cassandra session in the platform's keyspace, shared by the test session."""
    session = connect(stack)
    yield session
    session.cluster.shutdown()
