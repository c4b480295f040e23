"""Fixtures shared by the unit tests of the pipeline's agents."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.agents import worker_doubles


@pytest.fixture
def tracker_env(monkeypatch: Any) -> Any:
    """(tracker, cassandra, sends, outcomes): see worker_doubles.tracker_env."""
    return worker_doubles.tracker_env(monkeypatch)
