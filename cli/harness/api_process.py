"""A `chat4all api` subprocess on free ports, started and waited for until its health check says SERVING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chat4all.settings import REPO_ROOT
from cli.client import open_channel
from cli.harness.ports import free_port

TEST_JWT_SECRET = "chat4all-test-secret-not-for-production"
START_TIMEOUT = 40.0
# What a server that lost the race for one of its ports logs (asyncio/prometheus, gRPC).
_PORT_TAKEN = ("address already in use", "failed to bind")
_START_ATTEMPTS = 5


def chat4all_executable() -> str:
    """The `chat4all` command beside the running interpreter, else the one on PATH."""
    candidate = Path(sys.executable).parent / "chat4all"
    return str(candidate) if candidate.exists() else "chat4all"


@dataclass(kw_only=True)
class ApiProcess:
    """A running `chat4all api` subprocess."""

    port: int
    metrics_port: int
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str]
    ca_file: Path | None = None  # set when the server serves TLS: the CA its certificate is checked with

    @property
    def target(self) -> str:
        """The gRPC address, host:port."""
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout`` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class PortTaken(RuntimeError):
    """The server exited because one of its ports was taken between free_port() and its bind."""


def start_api(
    env: dict[str, str] | None = None,
    *,
    log_dir: Path | None = None,
    wait_serving: bool = True,
    ca_file: Path | None = None,
) -> ApiProcess:
    """Start an API server on free ports; waits until health says SERVING.

    Without ``wait_serving``, it waits only until the server answers at all. ``ca_file``: the server
    serves TLS (``env`` sets its certificate and key) and is reached with this CA.

    A port free_port() found can be taken by another process before the server binds it
    (other sessions pick ports the same way): the server then exits with "address already in
    use", and is started again on other ports.
    """
    for attempt in range(1, _START_ATTEMPTS + 1):
        try:
            return _start_api_once(env, log_dir=log_dir, wait_serving=wait_serving, ca_file=ca_file)
        except PortTaken:
            if attempt == _START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _start_api_once(
    env: dict[str, str] | None, *, log_dir: Path | None, wait_serving: bool, ca_file: Path | None
) -> ApiProcess:
    port, metrics_port = free_port(), free_port()
    full_env = {
        **os.environ,
        "CHAT4ALL_API_HOST": "127.0.0.1",
        "CHAT4ALL_API_PORT": str(port),
        "CHAT4ALL_API_METRICS_PORT": str(metrics_port),
        # The realtime gateway's WebSocket runs in the API process: each server needs its own port.
        "CHAT4ALL_WEBSOCKET_PORT": str(free_port()),
        "CHAT4ALL_JWT_SECRET": TEST_JWT_SECRET,
        # Dev mode: the local stack's S3 secret and plain TCP, which the API refuses outside it.
        "CHAT4ALL_DEV_MODE": "true",
        **(env or {}),
    }
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = log_dir / f"chat4all-api-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [chat4all_executable(), "api"], env=full_env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    server = ApiProcess(
        port=port, metrics_port=metrics_port, proc=proc, log_path=log_path, env=full_env, ca_file=ca_file
    )
    deadline = time.monotonic() + START_TIMEOUT
    with open_channel(server.target, ca_file) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc.poll() is not None:
                log = server.log()
                if any(sign in log.lower() for sign in _PORT_TAKEN):
                    raise PortTaken(f"API server lost a port to another process:\n{log[-2000:]}")
                raise RuntimeError(f"API server exited with {proc.returncode}:\n{log}")
            try:
                status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0).status
                if status == health_pb2.HealthCheckResponse.SERVING or not wait_serving:
                    return server
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"API server not ready after {START_TIMEOUT} s:\n{server.log()}")
            time.sleep(0.2)
