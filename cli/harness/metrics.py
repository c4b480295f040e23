"""Reading a worker's Prometheus metrics: its /metrics page and one metric's value in it."""

from __future__ import annotations

import urllib.request

from cli.harness.worker_process import WorkerProcess


def worker_metrics(worker: WorkerProcess) -> str:
    """The worker's /metrics page, Prometheus text format."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
