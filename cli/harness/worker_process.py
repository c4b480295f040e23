"""A `chat4all worker` subprocess with its own web port and data dir, and its web views."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chat4all.settings import REPO_ROOT
from cli.harness.ports import free_port

CHAT4ALL = str(REPO_ROOT / ".venv" / "bin" / "chat4all")
# Receipts fast enough for runs where the exact delay is not the point.
FAST_RECEIPTS = {"CHAT4ALL_DELIVERED_DELAY_MS": "[50,150]", "CHAT4ALL_READ_DELAY_MS": "[100,300]"}


class WorkerProcess:
    """One `chat4all worker` subprocess with its own web port and data dir."""

    def __init__(
        self,
        *,
        app_id: str,
        role: str = "all",
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        web_port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.app_id = app_id
        self.role = role
        self.web_port = web_port or free_port()
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix=f"c4a-worker-{app_id}-"))
        self.log_path = log_path or self.data_dir.with_suffix(".log")
        self.env = {**os.environ, "CHAT4ALL_APP_ID": app_id, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL of the worker's web server."""
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> WorkerProcess:
        """Start the subprocess (appending to its log file); returns self."""
        log = open(self.log_path, "ab")  # handed to the child
        self.proc = subprocess.Popen(
            [
                CHAT4ALL,
                "worker",
                "--role",
                self.role,
                "--web-port",
                str(self.web_port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
        )
        log.close()
        return self

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        """GET ``path`` from the web server: the HTTP status and the decoded JSON body."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` as JSON to ``path``; the decoded JSON reply."""
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def health(self) -> dict[str, Any] | None:
        """The /health report, or None while the web server does not answer."""
        try:
            return self.get("/health")[1]
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 90.0, *, min_partitions: int = 1) -> dict[str, Any]:
        """Wait until /health says ok with partitions assigned and no rebalance in progress."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; log: {self.log_tail()}")
            last = self.health()
            if (
                last
                and last.get("status") == "ok"
                and not last["kafka"].get("rebalancing")
                and last["kafka"].get("assigned_partitions", 0) >= min_partitions
            ):
                return last
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready after {timeout}s: {last}; log: {self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of its log ('' when there is none)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
