"""What the inspector's integration tests share: JSON reads of a worker's pages, and who owns a partition."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from cli.harness.worker_process import WorkerProcess


def get(worker: WorkerProcess, path: str, *, token: str | None = None) -> tuple[int, Any]:
    """The status and decoded JSON twin of page ``path`` on ``worker``."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(worker.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def owner_of(worker: WorkerProcess, topic_suffix: str, partition: int) -> str:
    """The URL of the worker that owns ``partition`` of the topic ending in ``topic_suffix``, from /ui/."""
    workers = get(worker, "/ui/")[1]["workers"]
    for w in workers:
        for topic, partitions in w["topics"].items():
            if topic.endswith(topic_suffix) and partition in partitions:
                return w["url"]
    raise AssertionError(f"no owner of {topic_suffix}[{partition}] in {workers}")


def same_assignment(*workers: WorkerProcess) -> bool:
    """Whether every one of ``workers`` sees all of them in one and the same group assignment."""
    seen = [[(w["url"], w["topics"]) for w in get(x, "/ui/")[1]["workers"]] for x in workers]
    return len(seen[0]) == len(workers) and all(s == seen[0] for s in seen)
