"""Isolated pipelines: an app id and topics of their own, so that runs sharing the stack do not see each other's messages."""

from __future__ import annotations

import asyncio
import logging
import uuid

from chat4all.settings import Settings
from cli.harness.topics import create_prefixed_topics, delete_topics
from cli.harness.worker_process import WorkerProcess

logger = logging.getLogger(__name__)


def new_app_id(prefix: str = "c4a-test") -> str:
    """A consumer group / changelog prefix of its own, so that other sessions do not interfere."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class IsolatedPipeline:
    """Topics of its own (``CHAT4ALL_TOPIC_PREFIX``) and an app id of its own.

    No other session's workers see these messages, and these workers see no one else's.
    """

    def __init__(
        self, settings: Settings, *, name: str = "c4a-iso", env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.app_id = new_app_id(name)
        self.prefix = f"{self.app_id}."
        self.env = {"CHAT4ALL_TOPIC_PREFIX": self.prefix, **(env or {})}
        self.workers: list[WorkerProcess] = []
        create_prefixed_topics(settings, self.prefix)

    def topic(self, name: str) -> str:
        """This pipeline's name of the platform topic ``name``."""
        return self.prefix + name

    def worker(self, *, role: str = "all", **env: str) -> WorkerProcess:
        """Start a worker of ``role`` on this pipeline (extra settings as CHAT4ALL_* env vars)."""
        w = WorkerProcess(app_id=self.app_id, role=role, env={**self.env, **env}).start()
        self.workers.append(w)
        return w

    def close(self) -> None:
        """Stop its workers and delete its topics and changelogs."""
        for w in self.workers:
            w.stop()
        try:
            asyncio.run(delete_topics(self.settings, [self.prefix, self.app_id + "-"]))
        except Exception as exc:  # cleanup only
            logger.warning("could not delete test topics: %s", exc)
