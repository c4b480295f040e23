"""Bring the whole local stack up, report on it, and take it down again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chat4all import scrape_targets
from chat4all.settings import Settings
from cli.stack import bootstrap
from cli.stack.cassandra import Cassandra
from cli.stack.exceptions import ServerStartError, StackError
from cli.stack.jaeger import Jaeger
from cli.stack.kafka import Kafka
from cli.stack.process import is_alive, port_in_use, spawn, stop, tail
from cli.stack.prometheus import Prometheus
from cli.stack.redis import Redis
from cli.stack.s3proxy import S3Proxy
from cli.stack.server import Server

SERVER_TYPES: tuple[type[Server], ...] = (
    Cassandra,
    Kafka,
    S3Proxy,
    Redis,
    Jaeger,
    Prometheus,
)  # slowest first


@dataclass(frozen=True, kw_only=True)
class ServerState:
    """One server's name, port, pid (None when stopped) and health, as ``status`` reports it."""

    name: str
    port: int
    pid: int | None
    healthy: bool

    @property
    def state(self) -> str:
        """The server's state: "stopped", "healthy" or "unhealthy"."""
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def servers(settings: Settings) -> list[Server]:
    """One of each server of the stack, slowest to start first."""
    return [cls(settings=settings) for cls in SERVER_TYPES]


def install(settings: Settings) -> list[Server]:
    """Fetch every server's binaries that are not cached yet; returns the servers.

    One after the other: Maven 3.8 does not lock its local repository, and parallel runs
    that download the same artifacts can leave corrupt files behind.
    """
    all_servers = servers(settings)
    for server in all_servers:
        server.install()
    return all_servers


def status(settings: Settings) -> list[ServerState]:
    """Each server's port, pid (from its pid file) and whether it answers a real request.

    Also prunes the scrape targets of exited processes, so Prometheus stops scraping them.
    """
    scrape_targets.prune(settings.targets_dir)
    out = []
    for server in servers(settings):
        pid = server.pid()
        out.append(
            ServerState(
                name=server.name, port=server.port, pid=pid, healthy=pid is not None and server.healthy()
            )
        )
    return out


def up(
    settings: Settings,
    *,
    on_event: Callable[[str], None] = lambda msg: None,
    on_start: Callable[[str], None] = lambda name: None,
) -> dict[str, str]:
    """Start every server that is not running, wait until each answers, then bootstrap.

    Idempotent: a running, healthy server is left alone. Returns name -> what was done.
    """
    all_servers = install(settings)

    actions: dict[str, str] = {}
    started: list[tuple[Server, int]] = []
    for server in all_servers:
        server.home.mkdir(parents=True, exist_ok=True)
        pid = server.pid()
        if pid is not None:
            actions[server.name] = f"already running (pid {pid})"
            on_event(f"{server.name} already running (pid {pid})")
            started.append((server, pid))
            continue
        if port_in_use(server.port):
            raise StackError(
                f"{server.name}: port {server.port} is taken by a process this stack did not start "
                f"(no live pid in {server.pid_file}); stop it or change CHAT4ALL_* ports"
            )
        server.prepare()
        new_pid = spawn(
            command=server.command(), log_file=server.log_file, pid_file=server.pid_file, cwd=server.home
        )
        on_start(server.name)
        on_event(f"started {server.name} (pid {new_pid}, log {server.log_file})")
        actions[server.name] = f"started (pid {new_pid})"
        started.append((server, new_pid))

    for server, pid in started:
        t0 = time.monotonic()
        _wait_healthy(server, pid, timeout=settings.stack_start_timeout)
        on_event(f"{server.name} healthy on 127.0.0.1:{server.port} ({time.monotonic() - t0:.1f}s wait)")

    prepare_platform(settings, on_event=on_event)
    return actions


def prepare_platform(settings: Settings, *, on_event: Callable[[str], None] = lambda msg: None) -> None:
    """Apply the CQL schema, create missing topics and the files bucket (all idempotent)."""
    n = bootstrap.apply_schema(settings)
    on_event(f"schema applied ({n} statements, keyspace {settings.cassandra_keyspace})")
    created = bootstrap.create_topics(settings)
    on_event(f"topics created: {', '.join(created) if created else 'none (all exist)'}")
    if bootstrap.create_bucket(settings):
        on_event(f"bucket {settings.s3_bucket} created")


def _wait_healthy(server: Server, pid: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise ServerStartError(
                name=server.name,
                log_path=str(server.log_file),
                tail=tail(server.log_file),
                reason="process exited",
            )
        if server.healthy():
            return
        time.sleep(1.0)
    raise ServerStartError(
        name=server.name,
        log_path=str(server.log_file),
        tail=tail(server.log_file),
        reason=f"no answer on port {server.port} within {timeout:.0f}s",
    )


def down(settings: Settings, *, wipe: bool = False, only: set[str] | None = None) -> dict[str, int | None]:
    """Stop exactly the processes `up` started (by pid file); with ``wipe`` also delete their data.

    ``only`` limits it to those server names (what one `up` started, for `make test`).
    """
    import shutil

    stopped: dict[str, int | None] = {}
    for server in reversed(servers(settings)):
        if only is not None and server.name not in only:
            continue
        stopped[server.name] = stop(server.pid_file, timeout=60)
        if wipe and server.home.exists():
            shutil.rmtree(server.home)
    return stopped
