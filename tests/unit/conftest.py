"""Fixtures shared by the unit tests of the pipeline's agents."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit import pipeline_helpers


@pytest.fixture
def tracker_env(monkeypatch: Any) -> Any:
    """(tracker, cassandra, sends, outcomes): see tests/unit/pipeline_helpers.py's tracker_env."""
    return pipeline_helpers.tracker_env(monkeypatch)
