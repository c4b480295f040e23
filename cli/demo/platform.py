"""The platform the demo runs on: the stack, the API and the first worker, found running or started here; the workers it adds.

The demo runs against what `make run` started (scripts/run.sh: one API and one worker on the
ports of the settings), so the inspector at the first worker's web port shows every step.
Whatever is not running it starts (the stack with `cli/stack`, the API and workers with
`cli/harness`), and on close it stops exactly what it started: never the `make run` worker.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chat4all.settings import Settings
from cli.client import open_channel
from cli.demo.polling import poll
from cli.demo.worker_pages import WorkerPages
from cli.harness.api_process import ApiProcess, start_api
from cli.harness.ports import free_port
from cli.harness.topics import create_prefixed_topics, seed_group_at_end
from cli.harness.worker_process import WorkerProcess
from cli.stack import manager

logger = logging.getLogger(__name__)

# The servers the API and the workers need; the others of the stack (traces, metrics) are optional here.
_NEEDED_SERVERS = {"cassandra", "kafka", "s3proxy", "redis"}


class PlatformError(RuntimeError):
    """The platform cannot be found or started (a port taken by something else, a worker that never gets ready)."""


@dataclass(kw_only=True)
class DemoWorker:
    """A worker of the demo's group: its name in the narration, its pages, and its process if the demo started it."""

    name: str
    pages: WorkerPages
    process: WorkerProcess | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The worker's web URL (as the group's assignment names it)."""
        return self.pages.url

    @property
    def started_here(self) -> bool:
        """True when the demo started it (and so may kill, wipe and stop it)."""
        return self.process is not None


def _api_serving(target: str, ca_file: Path | None) -> bool:
    channel = open_channel(target, ca_file)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2
        )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


async def _has_committed_offsets(settings: Settings) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        return bool(await admin.list_consumer_group_offsets(settings.app_id))
    finally:
        await admin.close()


class Platform:
    """The running platform of the demo and everything it started, stopped again by ``close``."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker_env: dict[str, str],
        worker_timeout: float,
        say: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self._worker_env = worker_env
        self._worker_timeout = worker_timeout
        self._say = say
        self.workdir = Path(tempfile.mkdtemp(prefix="chat4all-demo-"))
        self.workers: dict[str, DemoWorker] = {}
        self.api_target = f"{settings.api_host}:{settings.api_port}"
        self._api: ApiProcess | None = None
        self._stack_started: list[str] = []

    # --- finding or starting ----------------------------------------------------
    def ensure(self) -> None:
        """The stack, the topics, the API and the first worker (A), each found running or started."""
        settings = self.settings
        down = [s.name for s in manager.status(settings) if s.name in _NEEDED_SERVERS and not s.healthy]
        if down:
            self._say(f"{', '.join(down)} not running: starting the local stack (`chat4all stack up`)")
            manager.up(settings, on_event=self._say, on_start=self._stack_started.append)
        # Idempotent; a run on a topic prefix of its own finds none of them yet.
        create_prefixed_topics(settings, settings.topic_prefix)

        ca_file = settings.tls_ca_file
        if _api_serving(self.api_target, ca_file):
            self._say(f"using the running API at {self.api_target}")
        else:
            self._say(f"no API at {self.api_target}: starting one")
            self._api = start_api(self._env(), log_dir=self.workdir)
            self.api_target = self._api.target
            self._say(f"started an API at {self.api_target} (log {self._api.log_path})")

        first = WorkerPages(f"http://{settings.web_host}:{settings.web_port}", settings=settings)
        health = first.health()
        if health is not None:
            if health.get("app_id") != settings.app_id:
                raise PlatformError(
                    f"the worker at {first.url} runs app {health.get('app_id')!r}, not {settings.app_id!r}: "
                    "set CHAT4ALL_APP_ID to it, or CHAT4ALL_WEB_PORT to a free port"
                )
            self._say(f"using the running worker at {first.url} as worker A (the demo never kills it)")
            self.workers["A"] = DemoWorker(name="A", pages=first)
        else:
            if not asyncio.run(_has_committed_offsets(settings)):
                # A new group would replay everything ever published to these topics.
                seed_group_at_end(settings, settings.app_id)
            self._say(f"no worker at {first.url}: starting worker A there")
            self.start_worker("A", web_port=settings.web_port)
        self.wait_ready(self.workers["A"])

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        s = self.settings
        # Explicit, so the processes are on the demo's app id and topics whatever the caller's env says.
        return {"CHAT4ALL_APP_ID": s.app_id, "CHAT4ALL_TOPIC_PREFIX": s.topic_prefix, **(extra or {})}

    def start_worker(
        self, name: str, *, web_port: int | None = None, env: dict[str, str] | None = None, wait: bool = True
    ) -> DemoWorker:
        """Start worker ``name`` (role all) on its own web port and data dir; wait until it is ready."""
        port = web_port or free_port()
        data_dir = self.workdir / f"worker-{name}"
        data_dir.mkdir(exist_ok=True)
        worker_env = self._env({**self._worker_env, **(env or {})})
        process = WorkerProcess(
            app_id=self.settings.app_id,
            env=worker_env,
            web_port=port,
            data_dir=data_dir,
            log_path=self.workdir / f"worker-{name}.log",
        ).start()
        worker = DemoWorker(
            name=name,
            pages=WorkerPages(process.url, settings=self.settings),
            process=process,
            env=env or {},
        )
        self.workers[name] = worker
        if wait:
            self.wait_ready(worker)
        return worker

    def wait_ready(self, worker: DemoWorker) -> None:
        """Wait until ``worker`` is healthy with partitions and no rebalance in progress."""
        try:
            if worker.process is not None:
                worker.process.wait_ready(self._worker_timeout)
            else:
                _, ok = poll(worker.pages.ready, timeout=self._worker_timeout, interval=0.5)
                if not ok:
                    raise TimeoutError(
                        f"not ready after {self._worker_timeout:.0f} s: {worker.pages.health()}"
                    )
        except (TimeoutError, RuntimeError) as exc:
            raise PlatformError(f"worker {worker.name} at {worker.url}: {exc}") from None

    # --- what the steps do to workers -------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL worker ``name``: a crash, nothing flushed or committed. Only a worker the demo started."""
        worker = self.workers[name]
        if worker.process is None:
            raise PlatformError(f"worker {name} was not started by the demo: it is not the demo's to kill")
        worker.process.kill()

    def restart_empty(self, name: str) -> DemoWorker:
        """Start worker ``name`` again on its web port with its data dir wiped (its tables come from the changelogs)."""
        worker = self.workers[name]
        if worker.process is None:
            raise PlatformError(f"worker {name} was not started by the demo")
        worker.process.kill()
        shutil.rmtree(worker.process.data_dir, ignore_errors=True)
        return self.start_worker(name, web_port=worker.process.web_port, env=worker.env)

    def data_dir_bytes(self, name: str) -> int:
        """Bytes in worker ``name``'s data dir (its RocksDB tables)."""
        process = self.workers[name].process
        if process is None or not process.data_dir.exists():
            return 0
        return sum(p.stat().st_size for p in process.data_dir.rglob("*") if p.is_file())

    def started(self) -> list[str]:
        """Addresses of the servers the demo started (API host:port, worker URLs, stack server names)."""
        out = [f"api {self._api.target}"] if self._api is not None else []
        out += [f"worker {w.name} {w.url}" for w in self.workers.values() if w.process is not None]
        return out + [f"stack {name}" for name in self._stack_started]

    def names(self) -> dict[str, str]:
        """Web URL -> worker name, for the narration."""
        return {w.url: w.name for w in self.workers.values()}

    def live_workers(self) -> list[DemoWorker]:
        """The workers that are running now (not killed)."""
        return [w for w in self.workers.values() if w.process is None or w.process.proc.poll() is None]

    # --- cleaning up ------------------------------------------------------------
    def close(self, *, keep_logs: bool) -> None:
        """Stop what the demo started (workers, API, stack servers), newest first; remove its files unless ``keep_logs``."""
        for worker in reversed(list(self.workers.values())):
            if worker.process is not None:
                worker.process.stop()
        if self._api is not None:
            self._api.stop()
        if self._stack_started:
            manager.down(self.settings, only=set(self._stack_started))
        if keep_logs:
            self._say(f"logs of what the demo started are in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
