"""Prometheus file service discovery: each process's /metrics address as a target file while it runs.

Every API and worker writes ``<job>-<host>-<pid>.json`` into the targets folder when it starts
and deletes it when it stops; Prometheus watches the folder (``file_sd_configs``). A process that
dies without cleaning up (SIGKILL, OOM) leaves its file behind: ``prune`` deletes the files whose
process is gone, and every registered process runs it every ``metrics_targets_prune_seconds``
(so does `chat4all stack up` and `stack status`). Which process a file belongs to is carried in
labels with a ``__`` prefix, which Prometheus drops before it stores a series.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

HOST_LABEL = "__chat4all_host"
PID_LABEL = "__chat4all_pid"
START_LABEL = "__chat4all_start"  # the process's start time in clock ticks (/proc/<pid>/stat): pid reuse


def process_start(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return fields[19]


def register(targets_dir: Path, *, job: str, address: str, labels: dict[str, str] | None = None) -> Path:
    """Write this process's target file (atomically: Prometheus never reads half a file); returns its path."""
    pid = os.getpid()
    host = socket.gethostname()
    group = {
        "targets": [address],
        "labels": {
            **(labels or {}),
            HOST_LABEL: host,
            PID_LABEL: str(pid),
            START_LABEL: process_start(pid) or "",
        },
    }
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{job}-{host}-{pid}.json"
    partial = path.with_suffix(".tmp")  # not *.json: outside the glob Prometheus reads
    partial.write_text(json.dumps([group]) + "\n")
    partial.replace(path)
    logger.info("registered %s as a %s scrape target in %s", address, job, targets_dir)
    return path


def unregister(path: Path) -> None:
    """Delete a target file ``register`` wrote (missing is fine: a prune may have got there first)."""
    path.unlink(missing_ok=True)


def _is_gone(path: Path, host: str) -> bool:
    try:
        groups = json.loads(path.read_text())
        labels = groups[0]["labels"]
        if labels[HOST_LABEL] != host:
            return False  # another machine's process (a shared folder): its own host prunes it
        pid, start = int(labels[PID_LABEL]), labels[START_LABEL]
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False  # not one of ours: left alone
    current = process_start(pid)
    return current is None or (bool(start) and current != start)


def prune(targets_dir: Path) -> list[Path]:
    """Delete the target files of this host's processes that have exited; returns the files deleted."""
    if not targets_dir.is_dir():
        return []
    host = socket.gethostname()
    gone = [path for path in sorted(targets_dir.glob("*.json")) if _is_gone(path, host)]
    for path in gone:
        path.unlink(missing_ok=True)
        logger.info("pruned the scrape target of a process that is gone: %s", path.name)
    return gone


def reachable_address(host: str, port: int) -> str:
    """``host:port`` as Prometheus should dial it: a wildcard bind is reached on loopback."""
    return f"{'127.0.0.1' if host in ('', '0.0.0.0', '::') else host}:{port}"


async def prune_every(targets_dir: Path, *, seconds: float) -> None:
    """Run ``prune`` every ``seconds`` until cancelled (each registered process runs one of these)."""
    import asyncio

    while True:
        await asyncio.sleep(seconds)
        try:
            prune(targets_dir)
        except OSError as exc:  # a folder that vanished or went read-only: try again next time
            logger.warning("could not prune scrape targets in %s: %s", targets_dir, exc)
