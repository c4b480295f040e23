"""`stack up` is idempotent, restarts only what died, and `down` leaves no process behind.

Runs on its own stack instance (other ports, its own data dir, the shared jar cache), so it
never pulls the main stack from under the other tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from chat4all.settings import Settings
from cli.stack import manager
from cli.stack.process import is_alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVERS = ("cassandra", "kafka", "s3proxy", "redis", "jaeger", "prometheus")


def _env(base: Settings, stack_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CHAT4ALL_STACK_DIR": str(stack_dir),
        "CHAT4ALL_STACK_LIB_DIR": str(base.stack_lib_dir),
        "CHAT4ALL_KAFKA_PORT": "19092",
        "CHAT4ALL_KAFKA_CONTROLLER_PORT": "19093",
        "CHAT4ALL_CASSANDRA_PORT": "19042",
        "CHAT4ALL_CASSANDRA_STORAGE_PORT": "17000",
        "CHAT4ALL_CASSANDRA_JMX_PORT": "17199",
        "CHAT4ALL_S3_PORT": "19000",
        "CHAT4ALL_REDIS_PORT": "16379",
        "CHAT4ALL_JAEGER_QUERY_PORT": "26686",
        "CHAT4ALL_JAEGER_OTLP_GRPC_PORT": "24317",
        "CHAT4ALL_JAEGER_OTLP_HTTP_PORT": "24318",
        "CHAT4ALL_PROMETHEUS_PORT": "19090",
        "CHAT4ALL_CASSANDRA_HEAP": "512m",
        "CHAT4ALL_KAFKA_HEAP": "256m",
        "CHAT4ALL_TOPIC_PARTITIONS": "2",
    }


def _cli(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [".venv/bin/chat4all", "stack", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _pids(stack_dir: Path) -> dict[str, int]:
    return {name: int((stack_dir / name / f"{name}.pid").read_text()) for name in SERVERS}


def test_up_twice_kill_one_restart_only_it_then_down_leaves_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    stack_dir = tmp_path / "stack"
    env = _env(settings, stack_dir)
    try:
        first = _cli(env, "up")
        assert first.returncode == 0, first.stderr[-3000:]
        pids = _pids(stack_dir)
        assert all(is_alive(p) for p in pids.values())
        assert _cli(env, "status").returncode == 0

        second = _cli(env, "up")
        assert second.returncode == 0, second.stderr[-3000:]
        assert _pids(stack_dir) == pids, "a second `up` must not restart healthy servers"
        assert "already running" in second.stderr

        os.kill(pids["redis"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while is_alive(pids["redis"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        third = _cli(env, "up")
        assert third.returncode == 0, third.stderr[-3000:]
        after = _pids(stack_dir)
        assert after["redis"] != pids["redis"] and is_alive(after["redis"])
        assert {k: v for k, v in after.items() if k != "redis"} == {
            k: v for k, v in pids.items() if k != "redis"
        }
        pids = after
    finally:
        down = _cli(env, "down")
    assert down.returncode == 0, down.stderr
    assert not [name for name, pid in pids.items() if is_alive(pid)]
    status = _cli(env, "status")
    assert status.returncode == 1
    assert status.stdout.count("stopped") == len(SERVERS)
    # The main stack was never touched.
    assert all(s.healthy for s in manager.status(settings))


def test_failed_start_names_server_and_log(settings: Settings, tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    env = {**_env(settings, stack_dir), "CHAT4ALL_KAFKA_HEAP": "1k"}  # the JVM refuses a 1 KiB heap
    try:
        result = _cli(env, "up")
    finally:
        _cli(env, "down")
    assert result.returncode == 1
    assert "kafka failed to start" in result.stderr
    assert str(stack_dir / "kafka" / "kafka.log") in result.stderr.replace("\n", "")
