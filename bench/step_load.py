"""Step load through the real gRPC API: open-loop SendMessage at fixed rates, timed to DELIVERED as the sender sees it.

What it runs, all on 127.0.0.1 against the running local stack (`chat4all stack up`):

1. the yardstick (bench/yardstick.py): raw aiokafka produce-then-consume on the same broker;
2. a platform of its own: topics under a fresh ``CHAT4ALL_TOPIC_PREFIX`` and a fresh
   ``CHAT4ALL_APP_ID`` (created with `chat4all stack bootstrap`), its own `chat4all api` (free gRPC,
   metrics and WebSocket ports, a random JWT secret) and its own `chat4all worker --role all`
   (free web port, a temporary data dir). Every other setting stays at its default: the
   SendMessage rate limit, the simulated delays (DELIVERED 100-500 ms, READ 2-5 s), the ticks;
3. ``--senders`` users (default 48), each in its own PRIVATE conversation with a recipient of its
   own who has a WhatsApp channel linked. Each sender opens EventService.Subscribe before any send,
   and one warm-up message per sender must come back DELIVERED on that stream;
4. per offered rate (``--rates``), ``rate x --step-seconds`` sends at fixed times (round-robin over
   the senders), each issued at its time whatever the earlier ones are doing (open loop), no
   client_message_id. After the last send it waits until every accepted message was seen
   DELIVERED and then READ (``--drain-timeout`` from the last send, default 30 s).

Per step it reports: accepted/s (accepted / seconds from the first send to the last accepted
answer), errors by gRPC code, send latency p50/p99, send -> DELIVERED p50/p95/max (the load
generator's clock: when the message.status event reached the sender minus when the SendMessage
call was issued; a message never seen DELIVERED counts as infinitely late), the drain time (last
DELIVERED seen - last send), and CPU ms per accepted message of the API, the worker, Kafka,
Cassandra, Redis, S3Proxy and the load generator itself (utime+stime from /proc over the step:
first send to the last READ seen, idle included), plus the busy CPU of the whole machine that none
of them used ("other": other sessions on this shared machine).

A rate is *sustained* when every send was accepted without error, send -> DELIVERED p95 <= 1.5 s
and everything was DELIVERED within 3 s of the last send. The highest sustained rate is printed.
A step that leaves a backlog is followed by a wait (``--recover-timeout``) before the next step;
if the backlog outlives it, the remaining steps are skipped (they would measure the backlog).

Optional: ``--profile-rate R`` records the worker with py-spy (``--profile-seconds``, default 30,
``--format raw``, idle frames excluded) during the step at rate R and writes profile-summary.md
(the frames with the most self and inclusive samples). ``--wait-idle S`` waits up to S seconds
before each step until the rest of the machine is nearly idle (other sessions share the cores).

Results (results.md, results.json, step-load.png, the API's and worker's logs) go to
``--out``/step-<UTC time>/ (default bench/results/). Bounded: at most sum(rates) x step-seconds
sends, each step ends at most drain-timeout after its last send.

    .venv/bin/python bench/step_load.py                      # rates 50,100,200,300,400, 20 s each
    .venv/bin/python bench/step_load.py --rates 20,40,60,100 --step-seconds 20
    .venv/bin/python bench/step_load.py --rates 300 --step-seconds 60 --senders 96
    .venv/bin/python bench/step_load.py --rates 40 --step-seconds 35 --profile-rate 40   # + py-spy of the worker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.proc_cpu import CpuMeter, CpuSample, stack_pids  # noqa: E402
from bench.yardstick import YardstickResult, run_yardstick  # noqa: E402
from chat4all.v1 import (  # noqa: E402
    auth_pb2,
    auth_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
)

logger = logging.getLogger("step_load")

CHAT4ALL = REPO_ROOT / ".venv" / "bin" / "chat4all"
SUSTAINED_P95_S = 1.5
SUSTAINED_DRAIN_S = 3.0
PLATFORM = ("api", "worker", "kafka", "cassandra", "redis", "s3proxy")
DELIVERED_OR_LATER = {messages_pb2.MESSAGE_STATUS_DELIVERED, messages_pb2.MESSAGE_STATUS_READ}
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --------------------------------------------------------------------------- platform processes


class Platform:
    """This run's topics, API and worker; ``close`` stops the processes and deletes the topics."""

    def __init__(self, *, out_dir: Path) -> None:
        from chat4all.settings import Settings

        self.out_dir = out_dir
        self.app_id = f"c4a-step-{uuid.uuid4().hex[:10]}"
        self.prefix = f"{self.app_id}."
        self.api_port, self.metrics_port, self.ws_port, self.web_port = (free_port() for _ in range(4))
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"{self.app_id}-"))
        # Inherited CHAT4ALL_* variables (e.g. CHAT4ALL_STACK_DIR) pass through; they are recorded in the results.
        self.inherited = {k: v for k, v in os.environ.items() if k.startswith("CHAT4ALL_")}
        self.env = {
            **os.environ,
            "CHAT4ALL_TOPIC_PREFIX": self.prefix,
            "CHAT4ALL_APP_ID": self.app_id,
            "CHAT4ALL_API_HOST": "127.0.0.1",
            "CHAT4ALL_API_PORT": str(self.api_port),
            "CHAT4ALL_API_METRICS_PORT": str(self.metrics_port),
            "CHAT4ALL_WEBSOCKET_PORT": str(self.ws_port),
            "CHAT4ALL_JWT_SECRET": secrets.token_hex(32),
        }
        self.settings = Settings(topic_prefix=self.prefix, app_id=self.app_id)
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.out_dir / f"{name}.log", "wb") as log:
            return subprocess.Popen(
                [str(CHAT4ALL), *args], env=self.env, cwd=str(REPO_ROOT), stdout=log, stderr=subprocess.STDOUT
            )

    def start(self) -> None:
        logger.info("bootstrap: topics with prefix %s", self.prefix)
        boot = subprocess.run(
            [str(CHAT4ALL), "stack", "bootstrap"],
            env=self.env,
            cwd=str(REPO_ROOT),
            capture_output=True,
            timeout=180,
        )
        (self.out_dir / "bootstrap.log").write_bytes(boot.stdout + boot.stderr)
        if boot.returncode != 0:
            raise RuntimeError(
                f"chat4all stack bootstrap failed ({boot.returncode}): {boot.stderr.decode()[-2000:]}"
            )
        asyncio.run(self._wait_topics())
        self.worker = self._spawn(
            "worker",
            ["worker", "--role", "all", "--web-port", str(self.web_port), "--data-dir", str(self.data_dir)],
        )
        self.api = self._spawn("api", ["api"])
        self._wait_api()
        self._wait_worker()
        logger.info(
            "API pid %d on %s, worker pid %d (web %d), app id %s",
            self.api.pid,
            self.target,
            self.worker.pid,
            self.web_port,
            self.app_id,
        )

    async def _wait_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        from chat4all.topic_names import topic_name, topic_specs

        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            specs = {topic_name(self.settings, s.name): s.partitions for s in topic_specs(self.settings)}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                described = await admin.describe_topics(list(specs))
                if all(
                    not d.get("error_code") and len(d.get("partitions") or []) == specs[d["topic"]]
                    for d in described
                ):
                    return
                await asyncio.sleep(0.3)
            raise TimeoutError(f"topics with prefix {self.prefix} not ready after 30 s")
        finally:
            await admin.close()

    def _check_alive(self) -> None:
        for name, proc in (("api", self.api), ("worker", self.worker)):
            if proc is not None and proc.poll() is not None:
                tail = (self.out_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _wait_api(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_alive()
                with contextlib.suppress(grpc.RpcError):
                    if (
                        health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        return
                time.sleep(0.3)
        raise TimeoutError(f"API not SERVING after {START_TIMEOUT_S:.0f} s")

    def _wait_worker(self) -> None:
        """Until /health says ok with partitions assigned and no rebalance (the warm-up checks the rest)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as resp:
                    last = json.loads(resp.read() or b"null")
            except (OSError, ValueError) as exc:
                last = exc
            if isinstance(last, dict) and last.get("status") == "ok":
                kafka = last.get("kafka") or {}
                if not kafka.get("rebalancing") and kafka.get("assigned_partitions", 1) > 0:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready after {START_TIMEOUT_S:.0f} s: {last}")

    def pids(self) -> dict[str, int]:
        assert self.api is not None and self.worker is not None
        return {"api": self.api.pid, "worker": self.worker.pid}

    def close(self) -> None:
        for proc in (self.api, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.api, self.worker):
            if proc is None:
                continue
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                logger.warning("pid %d did not stop in 60 s: SIGKILL", proc.pid)
                proc.kill()
                proc.wait(timeout=10)
        try:
            asyncio.run(self._delete_topics())
        except Exception as exc:  # cleanup only
            logger.warning("could not delete the run's topics: %s", exc)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    async def _delete_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            doomed = [t for t in await admin.list_topics() if t.startswith((self.prefix, self.app_id + "-"))]
            if doomed:
                await admin.delete_topics(doomed)
            logger.info("deleted %d topics of %s", len(doomed), self.app_id)
        finally:
            await admin.close()


# --------------------------------------------------------------------------- load generator


@dataclass(kw_only=True)
class Sender:
    index: int
    user_id: str
    token: str
    conversation_id: str
    recipient_id: str
    channel: int  # index of the gRPC channel it uses

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass(slots=True)
class Send:
    """One SendMessage call; times on the load generator's monotonic clock."""

    step: int
    scheduled: float
    issued: float = 0.0
    answered: float | None = None
    code: str | None = None  # "OK" or the gRPC status code's name
    message_id: str | None = None
    delivered: float | None = None
    read: float | None = None


@dataclass(kw_only=True)
class StepResult:
    offered_rate: float
    seconds: float
    sends: int
    accepted: int
    accepted_per_s: float
    delivered_per_s: float  # messages seen DELIVERED / seconds from the first send to the last DELIVERED
    errors: dict[str, int]
    send_p50_ms: float | None
    send_p99_ms: float | None
    delivered_p50_s: float | None
    delivered_p95_s: float | None
    delivered_max_s: float | None
    undelivered_at_timeout: int
    drain_s: float | None  # last DELIVERED - last send; None when it did not drain within the timeout
    backlog_cleared_s: (
        float | None
    )  # when not drained in time: last DELIVERED - last send, after the recovery wait
    unread: int
    read_drain_s: float | None
    failed: int
    generator_lag_p99_ms: float
    generator_lag_max_ms: float
    window_s: float
    cpu_s: dict[str, float | None]
    cpu_ms_per_msg: dict[str, float | None]
    cores_busy: dict[str, float | None]
    loadavg: str
    sustained: bool
    skipped: str | None = None


class LoadGenerator:
    """Users, live event streams and open-loop sends through a few gRPC channels."""

    def __init__(self, *, target: str, senders: int, channels: int, send_timeout: float) -> None:
        options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel, not one shared
        self.channels = [
            grpc.aio.insecure_channel(target, options=[*options, ("chat4all.bench.channel", i)])
            for i in range(channels)
        ]
        self.n_senders = senders
        self.send_timeout = send_timeout
        self.senders: list[Sender] = []
        self.sends: list[Send] = []
        self.by_id: dict[str, Send] = {}
        # Events that arrived before their SendMessage answer: message_id -> (first DELIVERED, first READ).
        self.early: dict[str, list[float | None]] = {}
        self.failed_ids: set[str] = set()
        self.stream_errors: Counter[str] = Counter()
        self.streams: list[asyncio.Task[None]] = []
        self.inflight: set[asyncio.Task[None]] = set()  # references keep the send tasks alive
        self.closing = False
        self.delivered_count = 0
        self.read_count = 0

    async def close(self) -> None:
        self.closing = True
        for task in self.streams:
            task.cancel()
        await asyncio.gather(*self.streams, return_exceptions=True)
        for channel in self.channels:
            await channel.close()

    # -- set-up

    async def setup_users(self, *, concurrency: int = 4) -> None:
        """Senders, recipients with WhatsApp linked, one PRIVATE conversation each (argon2 makes this the slow part)."""
        gate = asyncio.Semaphore(concurrency)
        run = uuid.uuid4().hex[:6]

        async def one(i: int) -> Sender:
            channel = self.channels[i % len(self.channels)]
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            conversations = conversations_pb2_grpc.ConversationServiceStub(channel)
            async with gate:
                password = secrets.token_hex(12)
                recipient = await auth.Register(
                    auth_pb2.RegisterRequest(
                        username=f"step-r-{run}-{i}",
                        password=password,
                        channels={"whatsapp": f"+5511{secrets.randbelow(10**9):09d}"},
                    ),
                    timeout=60,
                )
                sender = await auth.Register(
                    auth_pb2.RegisterRequest(username=f"step-s-{run}-{i}", password=password), timeout=60
                )
                login = await auth.Login(
                    auth_pb2.LoginRequest(username=f"step-s-{run}-{i}", password=password), timeout=60
                )
                md = (("authorization", f"Bearer {login.access_token}"),)
                conv = await conversations.CreateConversation(
                    conversations_pb2.CreateConversationRequest(
                        type=conversations_pb2.CONVERSATION_TYPE_PRIVATE, participant_ids=[recipient.user_id]
                    ),
                    metadata=md,
                    timeout=60,
                )
            return Sender(
                index=i,
                user_id=sender.user_id,
                token=login.access_token,
                conversation_id=conv.conversation_id,
                recipient_id=recipient.user_id,
                channel=i % len(self.channels),
            )

        self.senders = list(await asyncio.gather(*(one(i) for i in range(self.n_senders))))

    async def subscribe_all(self) -> None:
        self.streams = [asyncio.create_task(self._stream(s)) for s in self.senders]

    async def _stream(self, sender: Sender) -> None:
        stub = events_pb2_grpc.EventServiceStub(self.channels[sender.channel])
        while not self.closing:
            call = stub.Subscribe(events_pb2.SubscribeRequest(), metadata=sender.md)
            try:
                async for response in call:
                    self._on_event(response.event, time.monotonic())
            except grpc.aio.AioRpcError as exc:
                if self.closing:
                    return
                self.stream_errors[exc.code().name] += 1
                logger.warning(
                    "sender %d: event stream ended (%s: %s); resubscribing",
                    sender.index,
                    exc.code().name,
                    exc.details(),
                )
                await asyncio.sleep(0.5)
            else:
                if self.closing:
                    return
                self.stream_errors["ENDED"] += 1
                await asyncio.sleep(0.5)

    def _on_event(self, event: events_pb2.Event, now: float) -> None:
        if event.kind != events_pb2.EVENT_KIND_MESSAGE_STATUS:
            return
        if event.status == messages_pb2.MESSAGE_STATUS_FAILED:
            self.failed_ids.add(event.message_id)
            return
        if event.status not in DELIVERED_OR_LATER:
            return
        is_read = event.status == messages_pb2.MESSAGE_STATUS_READ
        send = self.by_id.get(event.message_id)
        if send is None:
            seen = self.early.setdefault(event.message_id, [None, None])
            if seen[0] is None:
                seen[0] = now  # READ implies DELIVERED (a skipped DELIVERED event counts at the READ)
            if is_read and seen[1] is None:
                seen[1] = now
            return
        self._mark(send, now, is_read)

    def _mark(self, send: Send, now: float, is_read: bool) -> None:
        if send.delivered is None:
            send.delivered = now
            self.delivered_count += 1
        if is_read and send.read is None:
            send.read = now
            self.read_count += 1

    # -- sending

    async def _send(self, send: Send, sender: Sender, content: str) -> None:
        stub = messages_pb2_grpc.MessageServiceStub(self.channels[sender.channel])
        send.issued = time.monotonic()
        try:
            response = await stub.SendMessage(
                messages_pb2.SendMessageRequest(conversation_id=sender.conversation_id, content=content),
                metadata=sender.md,
                timeout=self.send_timeout,
            )
        except grpc.aio.AioRpcError as exc:
            send.answered, send.code = time.monotonic(), exc.code().name
            return
        send.answered, send.code, send.message_id = time.monotonic(), "OK", response.message_id
        self.by_id[response.message_id] = send
        early = self.early.pop(response.message_id, None)
        if early is not None:
            if early[0] is not None:
                self._mark(send, early[0], False)
            if early[1] is not None:
                self._mark(send, early[1], True)

    async def warm_up(self, timeout: float) -> float:
        """One message per sender, until each was seen DELIVERED on its stream: the whole chain is live."""
        start = time.monotonic()
        pending = {s.index: s for s in self.senders}
        attempts: list[tuple[int, Send]] = []
        while pending and time.monotonic() - start < timeout:
            batch = [Send(step=-1, scheduled=time.monotonic()) for _ in pending]
            await asyncio.gather(
                *(
                    self._send(send, s, f"warm-up {s.index}")
                    for send, s in zip(batch, pending.values(), strict=True)
                )
            )
            attempts += list(zip(pending, batch, strict=True))
            wait_until = time.monotonic() + 15
            while time.monotonic() < wait_until:
                for index, send in attempts:
                    if send.delivered is not None:
                        pending.pop(index, None)
                if not pending:
                    break
                await asyncio.sleep(0.2)
        if pending:
            raise TimeoutError(f"warm-up: {len(pending)} senders never saw DELIVERED in {timeout:.0f} s")
        return time.monotonic() - start

    async def run_step(self, step: int, rate: float, seconds: float) -> list[Send]:
        """Issue ``rate x seconds`` sends at fixed times, never waiting for an answer (open loop)."""
        total = max(1, round(rate * seconds))
        interval = 1.0 / rate
        sends = [Send(step=step, scheduled=0.0) for _ in range(total)]
        self.sends += sends
        t0 = time.monotonic() + 0.05
        for i, send in enumerate(sends):
            send.scheduled = t0 + i * interval
            delay = send.scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sender = self.senders[i % len(self.senders)]
            task = asyncio.create_task(self._send(send, sender, f"step {rate:g}/s #{i}"))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
        await asyncio.sleep(0)  # the last task starts (its issue time is set when it runs)
        return sends

    async def drain(self, sends: list[Send], timeout: float) -> tuple[float, float | None]:
        """Wait until every send is answered and every accepted one DELIVERED (then READ).

        At most ``timeout`` after the last send; returns (time every accepted one was DELIVERED or the
        timeout hit, time all were READ or None).
        """
        last_issue = max(s.issued for s in sends)
        deadline = last_issue + timeout
        delivered_at: float | None = None
        # Cursors: sends complete roughly in order, so each poll looks at few of them.
        answered = delivered = read = 0

        def advance(cursor: int, done: Any) -> int:
            while cursor < len(sends) and done(sends[cursor]):
                cursor += 1
            return cursor

        def finished(s: Send) -> bool:
            return (s.code is not None and s.code != "OK") or s.message_id in self.failed_ids

        while time.monotonic() < deadline:
            answered = advance(answered, lambda s: s.answered is not None)
            delivered = advance(delivered, lambda s: s.delivered is not None or finished(s))
            read = advance(read, lambda s: s.read is not None or finished(s))
            if answered == len(sends) and delivered == len(sends) and delivered_at is None:
                delivered_at = time.monotonic()
            if answered == len(sends) and read == len(sends):
                return delivered_at or time.monotonic(), time.monotonic()
            await asyncio.sleep(0.05)
        return delivered_at or time.monotonic(), None


# --------------------------------------------------------------------------- results


def summarise(
    *,
    rate: float,
    seconds: float,
    sends: list[Send],
    cpu: dict[str, float | None],
    window_s: float,
    delivered_by_timeout: set[int],
    loadavg: str,
    failed_ids: set[str],
) -> StepResult:
    accepted = [s for s in sends if s.code == "OK"]
    lateness = [max(0.0, s.issued - s.scheduled) for s in sends]
    errors = Counter(s.code or "NO_ANSWER" for s in sends if s.code != "OK")
    first_issue = min(s.issued for s in sends)
    last_issue = max(s.issued for s in sends)
    last_ok = max((s.answered or 0.0 for s in accepted), default=first_issue)
    span = max(last_ok - first_issue, 1e-9)
    send_ms = [((s.answered or s.issued) - s.issued) * 1000 for s in sends if s.answered is not None]
    to_delivered = [(s.delivered - s.issued) if s.delivered is not None else math.inf for s in accepted]
    undelivered = sum(1 for s in accepted if id(s) not in delivered_by_timeout)
    delivered_times = [s.delivered for s in accepted if s.delivered is not None]
    last_delivered = max(delivered_times, default=None)
    drain = None if undelivered or last_delivered is None else last_delivered - last_issue
    delivered_per_s = (
        len(delivered_times) / max(last_delivered - first_issue, 1e-9) if last_delivered else 0.0
    )
    cleared = None
    if undelivered and len(delivered_times) == len(accepted) and last_delivered is not None:
        cleared = last_delivered - last_issue
    read_times = [s.read for s in accepted if s.read is not None]
    unread = len(accepted) - len(read_times)
    read_drain = max(read_times) - last_issue if read_times and not unread else None
    n = len(accepted)
    cpu_ms = {k: (v * 1000 / n if v is not None and n else None) for k, v in cpu.items()}
    cores = {k: (v / window_s if v is not None else None) for k, v in cpu.items()}
    p95 = percentile(to_delivered, 0.95)
    sustained = (
        not errors
        and n == len(sends)
        and p95 is not None
        and p95 <= SUSTAINED_P95_S
        and drain is not None
        and drain <= SUSTAINED_DRAIN_S
    )
    return StepResult(
        offered_rate=rate,
        seconds=seconds,
        sends=len(sends),
        accepted=n,
        accepted_per_s=n / span if n else 0.0,
        delivered_per_s=delivered_per_s,
        errors=dict(errors),
        send_p50_ms=percentile(send_ms, 0.50),
        send_p99_ms=percentile(send_ms, 0.99),
        delivered_p50_s=percentile(to_delivered, 0.50),
        delivered_p95_s=p95,
        delivered_max_s=max(to_delivered, default=None),
        undelivered_at_timeout=undelivered,
        drain_s=drain,
        backlog_cleared_s=cleared,
        unread=unread,
        read_drain_s=read_drain,
        failed=sum(1 for s in accepted if s.message_id in failed_ids),
        generator_lag_p99_ms=(percentile(lateness, 0.99) or 0.0) * 1000,
        generator_lag_max_ms=max(lateness, default=0.0) * 1000,
        window_s=window_s,
        cpu_s=cpu,
        cpu_ms_per_msg=cpu_ms,
        cores_busy=cores,
        loadavg=loadavg,
        sustained=sustained,
    )


def _num(value: float | None, fmt: str = "{:.1f}", *, inf: str = "∞") -> str:
    if value is None:
        return "–"
    if value == math.inf:
        return inf
    return fmt.format(value)


def render_markdown(
    *, meta: dict[str, Any], yardstick: YardstickResult | None, steps: list[StepResult], best: float | None
) -> str:
    lines = [
        f"Step load, {meta['date']} — `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; code {meta['commit']}; {meta['senders']} senders, "
        f"{meta['channels']} gRPC channels, steps of {meta['step_seconds']:g} s, drain timeout "
        f"{meta['drain_timeout']:g} s.",
        "",
    ]
    if yardstick is not None:
        lines += [f"Yardstick: {yardstick.summary()}.", ""]
    lines += [
        "| offered/s | sent | accepted/s | errors | send p50 / p99 ms | DELIVERED/s | DELIVERED p50 / p95 / max s "
        "| drain s | READ drain s | gen lag p99 ms | sustained |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in steps:
        if s.skipped:
            lines.append(f"| {s.offered_rate:g} | – | – | – | – | – | – | – | – | – | skipped: {s.skipped} |")
            continue
        errors = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) or "0"
        if s.drain_s is not None:
            drain = _num(s.drain_s, "{:.2f}")
        elif s.backlog_cleared_s is not None:
            drain = f"> {meta['drain_timeout']:g} ({s.undelivered_at_timeout} pending; cleared at {s.backlog_cleared_s:.0f})"
        else:
            drain = f"> {meta['drain_timeout']:g} ({s.undelivered_at_timeout} pending)"
        read_drain = (
            _num(s.read_drain_s, "{:.1f}") if s.read_drain_s is not None else f"– ({s.unread} unread)"
        )
        lines.append(
            f"| {s.offered_rate:g} | {s.sends} | {s.accepted_per_s:.1f} | {errors} | "
            f"{_num(s.send_p50_ms)} / {_num(s.send_p99_ms)} | {s.delivered_per_s:.1f} | "
            f"{_num(s.delivered_p50_s, '{:.2f}')} / {_num(s.delivered_p95_s, '{:.2f}')} / "
            f"{_num(s.delivered_max_s, '{:.2f}')} | {drain} | {read_drain} | {s.generator_lag_p99_ms:.1f} | "
            f"{'yes' if s.sustained else 'no'} |"
        )
    lines += [
        "",
        "CPU ms per accepted message over the step (first send to last READ, idle included); "
        "cores = CPU seconds / wall seconds of that window:",
        "",
        "| offered/s | API | worker | Kafka | Cassandra | Redis | S3Proxy | platform | load gen | "
        "other (machine) | platform cores | loadavg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in steps:
        if s.skipped:
            continue
        c = s.cpu_ms_per_msg
        lines.append(
            f"| {s.offered_rate:g} | "
            + " | ".join(_num(c.get(k), "{:.2f}") for k in PLATFORM)
            + f" | {_num(c.get('platform'), '{:.2f}')} | {_num(c.get('loadgen'), '{:.2f}')} | "
            f"{_num(c.get('other'), '{:.2f}')} | {_num(s.cores_busy.get('platform'), '{:.2f}')} | {s.loadavg} |"
        )
    lines += [
        "",
        f"Highest sustained rate: {f'{best:g} msg/s' if best is not None else 'none of the rates'} "
        f"(every send accepted, send -> DELIVERED p95 <= {SUSTAINED_P95_S} s, all DELIVERED within "
        f"{SUSTAINED_DRAIN_S:g} s of the last send).",
    ]
    if meta.get("stream_errors"):
        lines += ["", f"Event streams that ended and were reopened: {meta['stream_errors']}"]
    return "\n".join(lines) + "\n"


def git_describe() -> tuple[str, list[str]]:
    """The checkout's short commit (marked when tracked files differ from it) and the paths that differ."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", []
    dirty = [line[3:] for line in status.splitlines() if line.strip()]
    return (f"{head} + uncommitted changes in {len(dirty)} files" if dirty else head), dirty


# --------------------------------------------------------------------------- main


async def run_steps(
    args: argparse.Namespace, plat: Platform, meter: CpuMeter
) -> tuple[list[StepResult], LoadGenerator]:
    gen = LoadGenerator(
        target=plat.target, senders=args.senders, channels=args.channels, send_timeout=args.send_timeout
    )
    results: list[StepResult] = []
    try:
        t = time.monotonic()
        await gen.setup_users()
        logger.info("%d senders set up in %.1f s", len(gen.senders), time.monotonic() - t)
        await gen.subscribe_all()
        await asyncio.sleep(1.0)  # the streams' subscriptions reach the hub
        logger.info(
            "warm-up: every sender's first message DELIVERED after %.1f s",
            await gen.warm_up(args.warmup_timeout),
        )
        await asyncio.sleep(args.settle_seconds)
        stop_reason: str | None = None
        for step, rate in enumerate(args.rates):
            if stop_reason:
                results.append(_skipped(rate, args.step_seconds, stop_reason))
                continue
            if args.wait_idle > 0:
                await wait_idle(meter, limit_s=args.wait_idle, max_cores=args.idle_cores)
            logger.info("step %d: %g msg/s for %g s", step, rate, args.step_seconds)
            profiler = None
            if args.profile_rate is not None and math.isclose(rate, args.profile_rate):
                profiler = start_profiler(plat, seconds=args.profile_seconds, hz=args.profile_hz)
            before: CpuSample = meter.sample()
            window_start = time.monotonic()
            sends = await gen.run_step(step, rate, args.step_seconds)
            await gen.drain(sends, args.drain_timeout)
            cpu = meter.since(before)
            window_s = time.monotonic() - window_start
            if profiler is not None:
                await asyncio.to_thread(finish_profiler, profiler, plat, rate=rate)
            delivered_by_timeout = {id(s) for s in sends if s.delivered is not None}
            loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            pending = [
                s
                for s in sends
                if s.code == "OK" and s.delivered is None and s.message_id not in gen.failed_ids
            ]
            if pending:  # a backlog: let it clear (it still counts for this step's latencies), or stop here
                logger.warning(
                    "step %g/s: %d accepted messages not DELIVERED %g s after the last send; waiting up to "
                    "%g s for the backlog",
                    rate,
                    len(pending),
                    args.drain_timeout,
                    args.recover_timeout,
                )
                deadline = time.monotonic() + args.recover_timeout
                while time.monotonic() < deadline and any(s.delivered is None for s in pending):
                    await asyncio.sleep(0.2)
                if any(s.delivered is None for s in pending):
                    stop_reason = f"backlog of the {rate:g}/s step not cleared"
            cpu = _with_totals(cpu)
            result = summarise(
                rate=rate,
                seconds=args.step_seconds,
                sends=sends,
                cpu=cpu,
                window_s=window_s,
                delivered_by_timeout=delivered_by_timeout,
                loadavg=loadavg,
                failed_ids=gen.failed_ids,
            )
            results.append(result)
            logger.info(
                "step %g/s: accepted %.1f/s, errors %s, DELIVERED p95 %s s, drain %s s, sustained %s",
                rate,
                result.accepted_per_s,
                result.errors or 0,
                _num(result.delivered_p95_s, "{:.2f}"),
                _num(result.drain_s, "{:.2f}"),
                result.sustained,
            )
            if not stop_reason:
                await asyncio.sleep(args.settle_seconds)
    finally:
        await gen.close()
    return results, gen


OWN_PROCESSES = ("api", "worker", "loadgen")


async def wait_idle(meter: CpuMeter, *, limit_s: float, max_cores: float, window_s: float = 3.0) -> None:
    """Wait until the machine's busy CPU, less this run's own processes, stays under ``max_cores``.

    It must stay under for ``window_s``: the shared servers count as busy when other sessions load
    them.
    """
    deadline = time.monotonic() + limit_s
    other = math.inf
    while time.monotonic() < deadline:
        before = meter.sample()
        await asyncio.sleep(window_s)
        used = meter.since(before)
        own = sum(used.get(k) or 0.0 for k in OWN_PROCESSES)
        other = ((used.get("machine") or 0.0) - own) / window_s
        if other <= max_cores:
            logger.info(
                "machine quiet: %.2f cores busy outside this run's API, worker and load generator", other
            )
            return
    logger.warning(
        "the machine did not get quiet in %.0f s: %.2f cores busy outside this run's API, worker and "
        "load generator",
        limit_s,
        other,
    )


def start_profiler(plat: Platform, *, seconds: float, hz: int) -> subprocess.Popen[bytes] | None:
    """py-spy on the worker (raw collapsed stacks), or None when py-spy is not installed."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        logger.warning("py-spy not found: no profile (pip install py-spy)")
        return None
    assert plat.worker is not None
    out = plat.out_dir / "worker-profile.txt"
    logger.info("py-spy: %g s of the worker (pid %d) at %d Hz -> %s", seconds, plat.worker.pid, hz, out)
    with open(plat.out_dir / "py-spy.log", "wb") as log:
        return subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(plat.worker.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(hz),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish_profiler(proc: subprocess.Popen[bytes], plat: Platform, *, rate: float) -> None:
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=10)
    raw = plat.out_dir / "worker-profile.txt"
    if raw.exists():
        (plat.out_dir / "profile-summary.md").write_text(
            profile_summary(raw, title=f"worker at {rate:g} msg/s")
        )


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (to/file.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(where.split('/')[-2:])})" if where else name


# Frames on nearly every stack that say nothing about where the time goes.
_SCAFFOLD = (
    "(click/",
    "(mode/",
    "(cli/worker.py)",
    "<module>",
    "run_until_complete (",
    "run_forever (",
    "_run_once (",
    "Handle._run (",
    "Thread.run (",
    "Thread._bootstrap",
    "Context.run (",
)
_THREAD_ROOTS = ("Thread._bootstrap", "Thread.run (", "Context.run (")
_WAIT_LEAVES = ("EpollSelector.select (",)


def _thread_of(frames: list[str]) -> str:
    """The main thread, or the first function a thread runs below threading's own frames."""
    if frames[0].startswith("<module>"):
        return "main thread (event loop)"
    if not frames[0].startswith("Thread._bootstrap"):
        return "partial stacks (--nonblocking sampled mid-change)"
    for name in frames:
        if not name.startswith(_THREAD_ROOTS):
            return f"thread: {name}"
    return "thread: ?"


def profile_summary(raw: Path, *, title: str, top: int = 20) -> str:
    """Where a py-spy raw (collapsed stacks) profile's samples went.

    Per thread, and the functions with the most self and inclusive samples (scaffolding frames left
    out of the inclusive list).
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]  # outermost first (no --threads: no thread entry)
        total += n
        threads[_thread_of(frames)] += n
        self_counts[frames[-1]] += n
        for name in set(frames):
            if not any(marker in name for marker in _SCAFFOLD):
                incl_counts[name] += n

    waiting = sum(c for name, c in self_counts.items() if name.startswith(_WAIT_LEAVES))

    def pct(c: int, of: int = total) -> str:
        return f"{100 * c / max(of, 1):.1f}"

    lines = [
        f"py-spy profile, {title}: {total} samples not idle by py-spy's test (every thread); "
        f"{pct(waiting)}% of them sit in `EpollSelector.select` (mostly the event loop waiting in epoll, "
        "which --nonblocking sampling does not always see as idle): the second column leaves them out.",
        "",
        "| % of samples | thread |",
        "|---:|---|",
    ]
    lines += [f"| {pct(c)} | `{name}` |" for name, c in threads.most_common(8)]
    lines += ["", "| self % | self % excl. select | function (innermost frame) |", "|---:|---:|---|"]
    lines += [
        f"| {pct(c)} | {'–' if name.startswith(_WAIT_LEAVES) else pct(c, total - waiting)} | `{name}` |"
        for name, c in self_counts.most_common(top)
    ]
    lines += ["", "| inclusive % | function (anywhere on the stack) |", "|---:|---|"]
    lines += [f"| {pct(c)} | `{name}` |" for name, c in incl_counts.most_common(top)]
    return "\n".join(lines) + "\n"


def _with_totals(cpu: dict[str, float | None]) -> dict[str, float | None]:
    platform_s = sum(v for k, v in cpu.items() if k in PLATFORM and v is not None)
    machine = cpu.pop("machine", None)
    out = dict(cpu)
    out["platform"] = platform_s
    if machine is not None:
        out["machine"] = machine
        out["other"] = max(0.0, machine - platform_s - (cpu.get("loadgen") or 0.0))
    return out


def _skipped(rate: float, seconds: float, reason: str) -> StepResult:
    return StepResult(
        offered_rate=rate,
        seconds=seconds,
        sends=0,
        accepted=0,
        accepted_per_s=0.0,
        delivered_per_s=0.0,
        errors={},
        send_p50_ms=None,
        send_p99_ms=None,
        delivered_p50_s=None,
        delivered_p95_s=None,
        delivered_max_s=None,
        undelivered_at_timeout=0,
        drain_s=None,
        backlog_cleared_s=None,
        unread=0,
        read_drain_s=None,
        failed=0,
        generator_lag_p99_ms=0.0,
        generator_lag_max_ms=0.0,
        window_s=0.0,
        cpu_s={},
        cpu_ms_per_msg={},
        cores_busy={},
        loadavg="",
        sustained=False,
        skipped=reason,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,100,200,300,400", help="offered rates, msg/s, comma-separated")
    parser.add_argument("--step-seconds", type=float, default=20.0, help="seconds of sending per rate")
    parser.add_argument(
        "--senders", type=int, default=48, help="senders, each in its own conversation (>= 48 for issue 9)"
    )
    parser.add_argument(
        "--channels", type=int, default=4, help="gRPC channels (TCP connections) the senders share"
    )
    parser.add_argument("--send-timeout", type=float, default=10.0, help="SendMessage deadline, seconds")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds after a step's last send to wait for DELIVERED (and READ)",
    )
    parser.add_argument(
        "--recover-timeout",
        type=float,
        default=60.0,
        help="extra seconds for a step's backlog to clear before the next step (else stop)",
    )
    parser.add_argument("--settle-seconds", type=float, default=2.0, help="pause between steps")
    parser.add_argument("--warmup-timeout", type=float, default=120.0)
    parser.add_argument("--yardstick-messages", type=int, default=100_000, help="0 skips the yardstick")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="before each step, wait up to this many seconds for the rest of the machine to be quiet",
    )
    parser.add_argument(
        "--idle-cores",
        type=float,
        default=0.3,
        help="'quiet' for --wait-idle: cores busy outside this run's API, worker and load generator "
        "(the stack's servers included)",
    )
    parser.add_argument(
        "--profile-rate", type=float, default=None, help="py-spy the worker during this rate's step"
    )
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    parser.add_argument("--profile-hz", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in str(args.rates).split(",") if r.strip()]
    if not args.rates or any(r <= 0 for r in args.rates):
        parser.error("--rates: positive numbers, e.g. 50,100,200")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    from chat4all.settings import get_settings

    settings = get_settings()
    started = dt.datetime.now(dt.UTC)
    out_dir = args.out / f"step-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["bench/step_load.py", *(argv if argv is not None else sys.argv[1:])])
    commit, dirty = git_describe()
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command.strip(),
        "machine": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Kafka, Cassandra, "
        "S3Proxy, Redis, the API, the worker and this load generator co-located on 127.0.0.1",
        "commit": commit,
        "uncommitted": dirty,
        "senders": args.senders,
        "channels": args.channels,
        "step_seconds": args.step_seconds,
        "drain_timeout": args.drain_timeout,
        "rates": args.rates,
        "python": sys.version.split()[0],
    }

    stack = stack_pids(settings.stack_dir)
    missing = [s for s in ("kafka", "cassandra", "redis", "s3proxy") if s not in stack]
    if missing:
        logger.warning(
            "no running %s found under %s: their CPU is not counted (CHAT4ALL_STACK_DIR?)",
            ", ".join(missing),
            settings.stack_dir,
        )

    yardstick = None
    if args.yardstick_messages > 0:
        yardstick = asyncio.run(run_yardstick(settings.kafka_bootstrap, messages=args.yardstick_messages))
        print(yardstick.summary(), flush=True)

    plat = Platform(out_dir=out_dir)
    meta["app_id"] = plat.app_id
    meta["inherited_env"] = plat.inherited
    try:
        plat.start()
        meter = CpuMeter({**plat.pids(), **stack, "loadgen": os.getpid()})
        steps, gen = asyncio.run(run_steps(args, plat, meter))
        meta["stream_errors"] = dict(gen.stream_errors)
    finally:
        plat.close()

    sustained = [s.offered_rate for s in steps if s.sustained]
    best = max(sustained) if sustained else None
    table = render_markdown(meta=meta, yardstick=yardstick, steps=steps, best=best)
    (out_dir / "results.md").write_text(table)
    (out_dir / "results.json").write_text(
        json.dumps(
            _jsonable(
                {
                    "meta": meta,
                    "yardstick": asdict(yardstick) if yardstick else None,
                    "steps": [asdict(s) for s in steps],
                    "highest_sustained_rate": best,
                }
            ),
            indent=2,
        )
        + "\n"
    )
    from bench.plots import plot_step_load

    rows = [asdict(s) for s in steps if not s.skipped]
    plot = plot_step_load(
        rows,
        out_dir / "step-load.png",
        title=f"Step load, {meta['date']}, {args.senders} senders ({meta['commit']})",
    )
    print()
    print(table)
    print(f"Results in {out_dir}" + (f" (plot {plot.name})" if plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
