r"""Cassandra driver comparison on the pipeline worker's write workload, from asyncio.

Each measured statement is one of the two writes the worker issues per message, prepared,
against a table shaped like ``messages`` (cql/schema.cql, receipts map<text, frozen<receipt>>)
in a keyspace of its own, ``bench_drivers`` (SimpleStrategy, RF 1):

* ``INSERT INTO messages (...) VALUES (...) USING TIMESTAMP ?`` with ``file_id`` UNSET and a
  one-entry receipts map (SENT), as the router's ``persist_message`` writes it;
* ``UPDATE messages USING TIMESTAMP ? SET receipts = receipts + ?, status = ?, delivered_at = ?,
  read_at = ?`` with ``read_at`` UNSET, as the status tracker's ``persist_receipts`` writes it.

``--concurrency`` coroutines (default 64, the worker's ``cassandra_concurrency``) each take the
next message, await its INSERT, then its UPDATE, so that many statements are in flight at all
times. After ``--warmup`` untimed statements, ``--statements`` (default 20,000) are timed and
the run prints statements/s, client CPU us per statement (getrusage of this process, every
thread included), Cassandra server CPU us per statement (utime+stime of the Cassandra process
from /proc/<pid>/stat, gross: whatever else the node did meanwhile is in it) and p50/p99
latency of one statement as the awaiting coroutine sees it.

Drivers (each in a venv of its own; the script imports only the one it measures):

* ``datastax`` (cassandra-driver) and ``scylla`` (scylla-driver, the same API): ``--reactor``
  libev (the wheels' default), asyncore or asyncio (the driver's own loop in its own thread);
  ``--bridge`` per-result (chat4all/cassandra.py today: one ``call_soon_threadsafe`` per
  result) or batched (results queue up in a deque, one wake-up of the loop drains them all);
* ``acsylla`` (the DataStax C++ driver, native asyncio);
* ``scyllapy`` (the Rust driver, native asyncio).

One run (about 5-20 s on 2 cores)::

    /tmp/drv-datastax/bin/python bench/cassandra_drivers.py --driver datastax --bridge batched
    /tmp/drv-acsylla/bin/python bench/cassandra_drivers.py --driver acsylla --statements 20000 --concurrency 64

The whole comparison (``--repeat`` runs of every variant, round-robin, medians; drops the
keyspace at the end; needs no driver itself)::

    python3.11 bench/cassandra_drivers.py --matrix --repeat 3 \
        --python datastax=/tmp/drv-datastax/bin/python --python scylla=/tmp/drv-scylla/bin/python \
        --python acsylla=/tmp/drv-acsylla/bin/python --python scyllapy=/tmp/drv-scyllapy/bin/python

Make the venvs with ``python3.11 -m venv /tmp/drv-X`` and ``pip install cassandra-driver==3.30.1``
(or scylla-driver, acsylla, scyllapy). ``--drop`` drops the keyspace after a single run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

KEYSPACE = "bench_drivers"
CONVERSATIONS = 48
CONTENT = "x" * 120  # a short chat message

DDL = [
    f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
    f"CREATE TYPE IF NOT EXISTS {KEYSPACE}.receipt (recipient_id uuid, channel text, status text,"
    " delivered_at timestamp, read_at timestamp)",
    f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.messages (conversation_id uuid, ts timestamp, message_id uuid,"
    " sender_id uuid, content text, file_id uuid, status text, delivered_at timestamp, read_at timestamp,"
    " receipts map<text, frozen<receipt>>, PRIMARY KEY (conversation_id, ts, message_id))"
    " WITH CLUSTERING ORDER BY (ts ASC, message_id ASC)",
]
DROP = f"DROP KEYSPACE IF EXISTS {KEYSPACE}"
INSERT = (
    f"INSERT INTO {KEYSPACE}.messages (conversation_id, ts, message_id, sender_id, content, file_id, status, receipts)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
)
UPDATE = (
    f"UPDATE {KEYSPACE}.messages USING TIMESTAMP ? SET receipts = receipts + ?, status = ?, delivered_at = ?,"
    " read_at = ? WHERE conversation_id = ? AND ts = ? AND message_id = ?"
)


class Message:
    """One message's ids and times; each driver turns it into its own bound values."""

    __slots__ = ("cid", "ts_ms", "mid", "sid", "rid", "key", "delivered_ms")

    def __init__(self, cid: uuid.UUID, ts_ms: int) -> None:
        self.cid = cid
        self.ts_ms = ts_ms
        self.mid = uuid.uuid4()
        self.sid = uuid.uuid4()
        self.rid = uuid.uuid4()
        self.key = f"{self.rid}:whatsapp"
        self.delivered_ms = ts_ms + 250


# --- DataStax cassandra-driver and scylla-driver -----------------------------------------------


def aexecute_per_result(
    session: Any, query: Any, params: Any = None, *, timeout: float = 10.0
) -> asyncio.Future:
    """chat4all/cassandra.py's bridge as it is: one call_soon_threadsafe (one loop wake-up) per result."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future = loop.create_future()
    response = session.execute_async(query, params, timeout=timeout)

    def on_ok(_rows: Any) -> None:
        loop.call_soon_threadsafe(_settle, result, response.result(), None)

    def on_err(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_settle, result, None, exc)

    response.add_callbacks(on_ok, on_err)
    return result


def _settle(fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if fut.done():  # cancelled by the awaiting coroutine
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


_Item = tuple[asyncio.Future, Any, BaseException | None]


class LoopBridge:
    """Hands the driver's results to one asyncio loop in batches: at most one wake-up pending.

    The driver calls back on its reactor thread (or on the loop's own thread when the response
    had already completed). A callback appends (future, value, error) to a deque and schedules
    ``_drain`` only when no drain is pending; ``_drain`` clears the flag *before* it empties the
    deque, so an item appended after its producer saw the flag set is drained by this drain or
    the next (at worst a drain finds the deque empty). deque.append/popleft and the flag's
    read/write are atomic under the GIL (CPython 3.11); a free-threaded build would need a lock.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the bridge is the value of a WeakKeyDictionary keyed by this loop.
        self._loop = weakref.ref(loop)
        self._pending: collections.deque[_Item] = collections.deque()
        self._scheduled = False

    def execute(
        self, loop: asyncio.AbstractEventLoop, session: Any, query: Any, params: Any, timeout: float
    ) -> asyncio.Future:
        result: asyncio.Future = loop.create_future()
        response: Any = session.execute_async(query, params, timeout=timeout)
        response.add_callbacks(
            self._on_ok, self._on_err, callback_args=(result, response), errback_args=(result,)
        )
        return result

    def _on_ok(self, _rows: Any, result: asyncio.Future, response: Any) -> None:
        # Runs on the driver's thread: hand the whole ResultSet to the loop.
        self._push((result, response.result(), None))

    def _on_err(self, exc: BaseException, result: asyncio.Future) -> None:
        self._push((result, None, exc))

    def _push(self, item: _Item) -> None:
        self._pending.append(item)
        if not self._scheduled:
            self._scheduled = True
            loop = self._loop()
            if loop is None:
                return
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody awaits these any more
                pass

    def _drain(self) -> None:
        self._scheduled = False
        pending = self._pending
        while pending:
            fut, value, exc = pending.popleft()
            if fut.done():  # cancelled by its caller
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(value)


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBridge] = weakref.WeakKeyDictionary()


def aexecute_batched(
    session: Any, query: Any, params: Any = None, *, timeout: float = 10.0
) -> asyncio.Future:
    """The proposed bridge: like aexecute_per_result, but results reach the loop in batches.

    Call from the loop's thread. Results reach the loop in batches: one cross-thread wake-up
    per batch of completed requests, not one per result.
    """
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = LoopBridge(loop)
    return bridge.execute(loop, session, query, params, timeout)


class PythonDriver:
    """cassandra-driver or scylla-driver (both import as ``cassandra``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dist = "scylla-driver" if args.driver == "scylla" else "cassandra-driver"

    async def connect(self) -> None:
        from importlib import metadata

        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy
        from cassandra.query import UNSET_VALUE

        try:
            self.version = metadata.version(self.dist)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"--driver {self.args.driver} needs {self.dist} in this interpreter ({sys.executable})"
            ) from None
        if self.args.reactor == "libev":
            from cassandra.io.libevreactor import LibevConnection as conn_class
        elif self.args.reactor == "asyncore":
            from cassandra.io.asyncorereactor import AsyncoreConnection as conn_class
        else:
            from cassandra.io.asyncioreactor import AsyncioConnection as conn_class
        self.unset = UNSET_VALUE
        # The project's configuration (chat4all/cassandra.py), with the reactor made explicit.
        profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=self.args.local_dc))
        self.cluster = Cluster(
            contact_points=[self.args.host],
            port=self.args.port,
            protocol_version=self.args.protocol or 5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connection_class=conn_class,
        )
        self.session = await asyncio.to_thread(self.cluster.connect)
        self.protocol = self.cluster.protocol_version
        for ddl in DDL:
            await asyncio.to_thread(self.session.execute, ddl)
        self.ins = await asyncio.to_thread(self.session.prepare, INSERT)
        self.upd = await asyncio.to_thread(self.session.prepare, UPDATE)
        self.run = aexecute_batched if self.args.bridge == "batched" else aexecute_per_result

    def label(self) -> str:
        return f"{self.dist} {self.version} {self.args.reactor} {self.args.bridge}"

    async def insert(self, m: Message) -> None:
        receipts = {m.key: (m.rid, "whatsapp", "SENT", None, None)}
        await self.run(
            self.session,
            self.ins,
            (m.cid, m.ts_ms, m.mid, m.sid, CONTENT, self.unset, "SENT", receipts, m.ts_ms * 1000),
        )

    async def update(self, m: Message) -> None:
        entry = {m.key: (m.rid, "whatsapp", "DELIVERED", m.delivered_ms, None)}
        await self.run(
            self.session,
            self.upd,
            (m.ts_ms * 1000 + 2, entry, "DELIVERED", m.delivered_ms, self.unset, m.cid, m.ts_ms, m.mid),
        )

    async def drop(self) -> None:
        await asyncio.to_thread(self.session.execute, DROP, timeout=60)

    async def close(self) -> None:
        await asyncio.to_thread(self.cluster.shutdown)


# --- acsylla (DataStax C++ driver) ------------------------------------------------------------


class AcsyllaDriver:
    """acsylla: futures resolved on the loop (the C++ driver's thread wakes it through a socketpair).

    Timestamps bind as seconds (an int is taken as seconds, so ms go in as a float); an index
    left unbound is sent UNSET; a UDT binds from a tuple. Cassandra 5's protocol v5 fails
    (the C++ driver's v5 is the pre-release 'beta' one), so it speaks v4.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    async def connect(self) -> None:
        from importlib import metadata

        import acsylla

        self.version = metadata.version("acsylla")
        self.protocol = self.args.protocol or 4
        self.cluster = acsylla.create_cluster(
            [self.args.host],
            port=self.args.port,
            protocol_version=self.protocol,
            log_level="error",
            load_balance_dc_aware=self.args.local_dc,
        )
        self.session = await self.cluster.create_session()
        for ddl in DDL:
            await self.session.execute(acsylla.create_statement(ddl))
        self.ins = await self.session.create_prepared(INSERT)
        self.upd = await self.session.create_prepared(UPDATE)

    def label(self) -> str:
        return f"acsylla {self.version}"

    async def insert(self, m: Message) -> None:
        st = self.ins.bind()
        ts = m.ts_ms / 1000
        st.bind(0, m.cid)
        st.bind(1, ts)
        st.bind(2, m.mid)
        st.bind(3, m.sid)
        st.bind(4, CONTENT)
        # 5 (file_id) stays unbound: UNSET
        st.bind(6, "SENT")
        st.bind(7, {m.key: (m.rid, "whatsapp", "SENT", None, None)})
        st.bind(8, m.ts_ms * 1000)
        await self.session.execute(st)

    async def update(self, m: Message) -> None:
        st = self.upd.bind()
        delivered = m.delivered_ms / 1000
        st.bind(0, m.ts_ms * 1000 + 2)
        st.bind(1, {m.key: (m.rid, "whatsapp", "DELIVERED", delivered, None)})
        st.bind(2, "DELIVERED")
        st.bind(3, delivered)
        # 4 (read_at) stays unbound: UNSET
        st.bind(5, m.cid)
        st.bind(6, m.ts_ms / 1000)
        st.bind(7, m.mid)
        await self.session.execute(st)

    async def drop(self) -> None:
        import acsylla

        await self.session.execute(acsylla.create_statement(DROP, timeout=60))

    async def close(self) -> None:
        await self.session.close()


# --- scyllapy (Rust driver) -------------------------------------------------------------------


class ScyllapyDriver:
    """scyllapy: a timestamp binds as a datetime (a Python int is sent as int32), a UDT as a dataclass."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    async def connect(self) -> None:
        import dataclasses
        from importlib import metadata

        from scyllapy import Scylla
        from scyllapy.extra_types import BigInt, ScyllaPyUDT, Unset

        @dataclasses.dataclass
        class Receipt(ScyllaPyUDT):
            __type_name__ = "receipt"
            recipient_id: uuid.UUID
            channel: str
            status: str
            delivered_at: Any
            read_at: Any

        self.version = metadata.version("scyllapy")
        self.protocol = 4  # the Rust driver speaks v4 only
        self.Receipt, self.BigInt, self.unset = Receipt, BigInt, Unset()
        self.session = Scylla([f"{self.args.host}:{self.args.port}"])
        await self.session.startup()
        for ddl in DDL:
            await self.session.execute(ddl)
        self.ins = await self.session.prepare(INSERT)
        self.upd = await self.session.prepare(UPDATE)

    def label(self) -> str:
        return f"scyllapy {self.version}"

    @staticmethod
    def _dt(ms: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)

    async def insert(self, m: Message) -> None:
        receipts = {m.key: self.Receipt(m.rid, "whatsapp", "SENT", None, None)}
        await self.session.execute(
            self.ins,
            [
                m.cid,
                self._dt(m.ts_ms),
                m.mid,
                m.sid,
                CONTENT,
                self.unset,
                "SENT",
                receipts,
                self.BigInt(m.ts_ms * 1000),
            ],
        )

    async def update(self, m: Message) -> None:
        delivered = self._dt(m.delivered_ms)
        entry = {m.key: self.Receipt(m.rid, "whatsapp", "DELIVERED", delivered, None)}
        await self.session.execute(
            self.upd,
            [
                self.BigInt(m.ts_ms * 1000 + 2),
                entry,
                "DELIVERED",
                delivered,
                self.unset,
                m.cid,
                self._dt(m.ts_ms),
                m.mid,
            ],
        )

    async def drop(self) -> None:
        await self.session.execute(DROP)

    async def close(self) -> None:
        await self.session.shutdown()


DRIVERS = {
    "datastax": PythonDriver,
    "scylla": PythonDriver,
    "acsylla": AcsyllaDriver,
    "scyllapy": ScyllapyDriver,
}


# --- measurement ------------------------------------------------------------------------------


def cassandra_pid(explicit: int | None) -> int | None:
    """The local node's pid: --cassandra-pid, the stack's pid file, or pgrep (read only)."""
    if explicit:
        return explicit
    root = Path(__file__).resolve().parent.parent
    for pid_file in glob.glob(str(root / ".stack" / "cassandra" / "*.pid")):
        try:
            pid = int(Path(pid_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            return pid
    try:
        out = subprocess.run(
            ["pgrep", "-f", "CassandraDaemon"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    pids = [int(p) for p in out.split()]
    return pids[0] if pids else None


def proc_cpu_seconds(pid: int | None) -> float:
    """utime+stime of a process from /proc/<pid>/stat (every thread), in seconds; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(driver: Any, statements: int, concurrency: int, latencies: list[float] | None) -> None:
    """``concurrency`` coroutines, each: INSERT a message, then UPDATE its receipts; until ``statements``."""
    messages = statements // 2
    convs = [uuid.uuid4() for _ in range(CONVERSATIONS)]
    base_ms = int(time.time() * 1000)
    issued = 0
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal issued
        while issued < messages:
            i = issued
            issued += 1
            m = Message(convs[i % CONVERSATIONS], base_ms + i)
            if latencies is None:
                await driver.insert(m)
                await driver.update(m)
                continue
            t0 = clock()
            await driver.insert(m)
            t1 = clock()
            await driver.update(m)
            latencies.append(t1 - t0)
            latencies.append(clock() - t1)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_once(args: argparse.Namespace) -> dict[str, Any]:
    driver = DRIVERS[args.driver](args)
    await driver.connect()
    pid = cassandra_pid(args.cassandra_pid)
    try:
        if args.drop_only:
            await driver.drop()
            return {"dropped": KEYSPACE}
        await drive(driver, args.warmup, args.concurrency, None)
        latencies: list[float] = []
        server0, client0, wall0 = proc_cpu_seconds(pid), self_cpu_seconds(), time.perf_counter()
        await drive(driver, args.statements, args.concurrency, latencies)
        wall = time.perf_counter() - wall0
        client, server = self_cpu_seconds() - client0, proc_cpu_seconds(pid) - server0
        if args.drop:
            await driver.drop()
    finally:
        await driver.close()
    n = len(latencies)
    latencies.sort()
    return {
        "driver": args.driver,
        "label": driver.label() + (" uvloop" if args.loop == "uvloop" else ""),
        "protocol": driver.protocol,
        "loop": args.loop,
        "statements": n,
        "concurrency": args.concurrency,
        "seconds": round(wall, 3),
        "stmt_per_s": round(n / wall, 1),
        "client_cpu_us": round(client / n * 1e6, 1),
        "server_cpu_us": round(server / n * 1e6, 1) if pid else None,
        "p50_ms": round(percentile(latencies, 0.50) * 1e3, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1e3, 2),
        "python_threads": threading.active_count(),
    }


# --- the whole comparison ---------------------------------------------------------------------

# (name, driver, extra arguments); the driver name picks the interpreter given with --python.
VARIANTS = [
    ("datastax libev per-result (today)", "datastax", ["--reactor", "libev", "--bridge", "per-result"]),
    ("datastax libev batched", "datastax", ["--reactor", "libev", "--bridge", "batched"]),
    (
        "datastax libev batched, protocol v4",
        "datastax",
        ["--reactor", "libev", "--bridge", "batched", "--protocol", "4"],
    ),
    ("datastax asyncore per-result", "datastax", ["--reactor", "asyncore", "--bridge", "per-result"]),
    ("datastax asyncore batched", "datastax", ["--reactor", "asyncore", "--bridge", "batched"]),
    ("datastax asyncio-reactor per-result", "datastax", ["--reactor", "asyncio", "--bridge", "per-result"]),
    ("datastax asyncio-reactor batched", "datastax", ["--reactor", "asyncio", "--bridge", "batched"]),
    ("scylla libev per-result", "scylla", ["--reactor", "libev", "--bridge", "per-result"]),
    ("scylla libev batched", "scylla", ["--reactor", "libev", "--bridge", "batched"]),
    ("acsylla", "acsylla", []),
    ("scyllapy", "scyllapy", []),
    (
        "datastax libev batched, uvloop",
        "datastax",
        ["--reactor", "libev", "--bridge", "batched", "--loop", "uvloop"],
    ),
    ("acsylla, uvloop", "acsylla", ["--loop", "uvloop"]),
]
METRICS = ["stmt_per_s", "client_cpu_us", "server_cpu_us", "p50_ms", "p99_ms"]


def idle_server_cpu(pid: int | None, seconds: float = 5.0) -> float | None:
    """Cassandra's CPU ms per second with no load from this benchmark (others may be using it)."""
    if pid is None:
        return None
    c0 = proc_cpu_seconds(pid)
    time.sleep(seconds)
    return round((proc_cpu_seconds(pid) - c0) / seconds * 1e3, 1)


def matrix(args: argparse.Namespace) -> None:
    pythons = dict(item.split("=", 1) for item in args.python)
    variants = [
        v for v in VARIANTS if v[1] in pythons and (not args.only or any(o in v[0] for o in args.only))
    ]
    if not variants:
        raise SystemExit("no variant to run: give --python DRIVER=/path/to/venv/bin/python")
    script = str(Path(__file__).resolve())
    common = [
        "--statements",
        str(args.statements),
        "--concurrency",
        str(args.concurrency),
        "--warmup",
        str(args.warmup),
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--loop",
        args.loop,
        "--json",
    ]
    pid = cassandra_pid(args.cassandra_pid)
    idle_before = idle_server_cpu(pid)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    for rep in range(args.repeat):
        for name, drv, extra in variants:
            cmd = [pythons[drv], script, "--driver", drv, *common, *extra]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.run_timeout, check=False)
            if proc.returncode != 0:
                print(
                    f"# {name} (run {rep + 1}) failed: {proc.stderr.strip().splitlines()[-1:]}",
                    file=sys.stderr,
                )
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name].append(row)
            print(
                f"# run {rep + 1} {name}: " + " ".join(f"{k}={row[k]}" for k in METRICS),
                file=sys.stderr,
                flush=True,
            )
    idle_after = idle_server_cpu(pid)
    dropper = pythons.get("datastax") or next(iter(pythons.values()))
    drop_driver = "datastax" if "datastax" in pythons else next(iter(pythons))
    subprocess.run(
        [
            dropper,
            script,
            "--driver",
            drop_driver,
            "--drop-only",
            "--host",
            args.host,
            "--port",
            str(args.port),
        ],
        capture_output=True,
        timeout=args.run_timeout,
        check=False,
    )
    print(f"Cassandra idle CPU before/after: {idle_before} / {idle_after} ms/s (not subtracted below)")
    print(
        f"{args.statements} statements per run, {args.concurrency} in flight, median of {args.repeat} runs"
        f" (statements/s: median, min-max), asyncio loop unless the variant says uvloop\n"
    )
    print(
        "| variant | driver | protocol | statements/s (min-max) | client CPU µs/stmt | Cassandra CPU µs/stmt | p50 ms | p99 ms |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, _, _ in variants:
        rows = results[name]
        if not rows:
            print(f"| {name} | failed | | | | | | |")
            continue
        med = {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in METRICS}
        print(
            f"| {name} | {rows[0]['label']} | v{rows[0]['protocol']} | {med['stmt_per_s']:,.0f} "
            f"({min(r['stmt_per_s'] for r in rows):,.0f}-{max(r['stmt_per_s'] for r in rows):,.0f}) | "
            f"{med['client_cpu_us']:.0f} | {med['server_cpu_us']:.0f} | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} |"
        )
    if args.raw:
        Path(args.raw).write_text(json.dumps(results, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--driver", choices=sorted(DRIVERS), default="datastax")
    ap.add_argument(
        "--statements", type=int, default=20_000, help="timed statements (half INSERT, half UPDATE)"
    )
    ap.add_argument("--concurrency", type=int, default=64, help="statements in flight")
    ap.add_argument("--warmup", type=int, default=1_000, help="untimed statements first")
    ap.add_argument(
        "--reactor", choices=["libev", "asyncore", "asyncio"], default="libev", help="datastax/scylla only"
    )
    ap.add_argument(
        "--bridge", choices=["per-result", "batched"], default="per-result", help="datastax/scylla only"
    )
    ap.add_argument(
        "--protocol", type=int, default=None, help="native protocol version (default: 5, or 4 where v5 fails)"
    )
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--local-dc", default="datacenter1")
    ap.add_argument("--cassandra-pid", type=int, default=None)
    ap.add_argument("--drop", action="store_true", help=f"drop keyspace {KEYSPACE} after the run")
    ap.add_argument("--drop-only", action="store_true", help=f"connect, drop keyspace {KEYSPACE}, exit")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--matrix", action="store_true", help="run every variant --repeat times, print the table")
    ap.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="DRIVER=PYTHON",
        help="--matrix: a driver's interpreter",
    )
    ap.add_argument("--only", action="append", default=[], help="--matrix: variants whose name contains this")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=120.0)
    ap.add_argument("--raw", default=None, help="--matrix: write every run's figures as JSON here")
    args = ap.parse_args()
    if args.matrix:
        matrix(args)
        return
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(run_once(args))
    else:
        result = asyncio.run(run_once(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
