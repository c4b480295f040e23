"""Fixtures of the pipeline integration tests: a Cassandra session on the local stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chat4all.settings import Settings
from cli.harness.isolation import IsolatedPipeline
from cli.harness.worker_process import FAST_RECEIPTS


@pytest.fixture(scope="module")
def isolated(stack: Settings) -> Iterator[IsolatedPipeline]:
    """Topics and app id of this test module alone, with one running worker (fast simulated receipts)."""
    pipeline = IsolatedPipeline(stack, env=FAST_RECEIPTS)
    try:
        pipeline.worker().wait_ready()
        yield pipeline
    finally:
        pipeline.close()
