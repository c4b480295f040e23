"""A Prometheus of a run's own (the stack's server class on a free port and a temp folder) and its query API."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from chat4all.settings import Settings
from cli.harness.ports import free_port
from cli.stack.process import is_alive, spawn, stop, tail
from cli.stack.prometheus import Prometheus


class PrometheusProcess:
    """A running Prometheus that watches its own targets folder, scraping every ``scrape_seconds``."""

    def __init__(self, *, home: Path, scrape_seconds: float = 1.0) -> None:
        self.settings = Settings(
            stack_dir=home, prometheus_port=free_port(), prometheus_scrape_interval_seconds=scrape_seconds
        )
        self.server = Prometheus(settings=self.settings)
        self.url = f"http://127.0.0.1:{self.server.port}"

    @property
    def targets_dir(self) -> Path:
        """The folder an API or worker must register in to be scraped by this Prometheus."""
        return self.settings.targets_dir

    def env(self, *, prune_seconds: float = 1.0) -> dict[str, str]:
        """The settings an API or worker needs to register here (and prune its peers quickly)."""
        return {
            "CHAT4ALL_METRICS_TARGETS_DIR": str(self.targets_dir),
            "CHAT4ALL_METRICS_TARGETS_PRUNE_SECONDS": str(prune_seconds),
        }

    def start(self, *, timeout: float = 30.0) -> PrometheusProcess:
        """Install (no-op when present), render its config, start it and wait for /-/ready."""
        self.server.install()
        self.server.prepare()
        pid = spawn(
            command=self.server.command(),
            log_file=self.server.log_file,
            pid_file=self.server.pid_file,
            cwd=self.server.home,
        )
        deadline = time.monotonic() + timeout
        while not self.server.healthy():
            if not is_alive(pid) or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"test Prometheus did not get ready:\n{tail(self.server.log_file)}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """SIGTERM it (SIGKILL after 20 s)."""
        stop(self.server.pid_file, timeout=20)

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now: one {metric, value} per series."""
        data = self._get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", f"{expr} is not an instant vector: {data['resultType']}"
        return data["result"]

    def active_targets(self) -> list[dict[str, Any]]:
        """The targets it scrapes now (job, scrape URL, health)."""
        return self._get("/api/v1/targets", state="active")["activeTargets"]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule of every group, with its health."""
        return [r for g in self._get("/api/v1/rules")["groups"] for r in g["rules"]]

    def wait_for_series(self, expr: str, *, timeout: float, what: str = "") -> list[dict[str, Any]]:
        """Poll until ``expr`` returns at least one series; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no series for {what or expr} within {timeout:.0f} s")
            time.sleep(0.5)
