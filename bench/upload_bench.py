"""Upload benchmark: large generated files through one fresh API process, beside the raw S3 ceiling.

The files are 2 GiB by default, in 1 MiB chunks; the result is the median of ``--runs`` uploads,
beside the raw S3 ceiling measured in the same run. Not a test; needs the local stack, and runs
beside `make run` (free ports, topics of its own).

    .venv/bin/python bench/upload_bench.py                          # 3 x 2 GiB in 1 MiB chunks, then the ceiling
    .venv/bin/python bench/upload_bench.py --size-mib 512 --runs 1 --no-ceiling
    .venv/bin/python bench/upload_bench.py --py-spy /tmp/api.txt    # py-spy (raw) of the API during run 1

Each run is timed from the first chunk to the final response (object assembly included); the
API's RSS is sampled every 50 ms (growth = peak - idle just before that run), and the CPU
seconds of the API, S3Proxy, Cassandra and this client are counted over the run.

The data is generated on the fly from one 4 MiB random block (each chunk stamped with its
index), twice: once for the SHA-256 the first message declares, once to send it; the client
never holds more than one chunk.

The ceiling: the same bytes straight into S3 with the MinIO SDK, no API and no gRPC: a
multipart upload with the API's part size, parts written one at a time and ``upload_parts_in_flight``
at a time, then CompleteMultipartUpload; once with the API's client (large bodies unsigned unless
CHAT4ALL_S3_SIGNED_PAYLOAD) and once with the SDK's default signing (SHA-256 of every body).

Before the API starts it measures the machine's yardstick (bench/yardstick.py: raw aiokafka
pass-through on the same broker, ``--yardstick-messages`` records, default 100,000, 0 skips it),
printed and written to the results.

Everything a run creates (object, metadata row, session row) is deleted afterwards unless
--keep. Results: a table on stdout, and JSON + markdown under bench/results/upload-<time>/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.burst import add_yardstick_arg, measure_yardstick, yardstick_lines  # noqa: E402 - after the path set-up
from bench.yardstick import YardstickResult  # noqa: E402
from chat4all.settings import Settings, get_settings  # noqa: E402 - after the path set-up, so that it runs from a checkout
from chat4all.v1 import files_pb2, files_pb2_grpc  # noqa: E402
from cli.harness.api_client import ApiClient, client_for  # noqa: E402
from cli.harness.api_process import ApiProcess, start_api  # noqa: E402

MiB = 1024 * 1024
TOPIC_PREFIX = os.environ.get("CHAT4ALL_TOPIC_PREFIX") or "bench-upload."
BLOCK = os.urandom(4 * MiB)
BLOCK_VIEW = memoryview(BLOCK)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def chunks(size: int, chunk: int) -> Iterator[bytes]:
    """``size`` bytes of generated data in ``chunk``-sized pieces; the same bytes on every call."""
    sent, index = 0, 0
    while sent < size:
        n = min(chunk, size - sent)
        stamp = index.to_bytes(8, "big")
        yield b"".join((stamp, BLOCK_VIEW[8:n])) if n > 8 else stamp[:n]
        sent += n
        index += 1


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (utime + stime) of a process, all its threads; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def stack_pid(settings: Settings, name: str) -> int | None:
    try:
        return int((settings.stack_dir / name / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """CPU seconds per named process between two samples."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids

    def sample(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        now = self.sample()
        return {name: round(now[name] - before[name], 1) for name in self.pids}


class RssSampler(threading.Thread):
    """Samples a process's RSS every ``interval`` seconds; ``peak`` is the highest seen (KiB)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(self.interval)


def chunk_message(data: bytes) -> bytes:
    """``UploadFileRequest(chunk=data).SerializeToString()``, written directly (field 2, length, bytes).

    Protobuf would copy each chunk twice more, CPU that the client takes from the server here.
    """
    n, header = len(data), bytearray(b"\x12")
    while n >= 0x80:
        header.append(n & 0x7F | 0x80)
        n >>= 7
    header.append(n)
    return bytes(header) + data


def upload(
    channel, md, conversation_id: str, size: int, chunk: int, sha: str, marks: dict
) -> files_pb2.UploadFileResponse:
    info = files_pb2.FileInfo(
        conversation_id=conversation_id,
        filename="bench.bin",
        mime_type="application/octet-stream",
        size=size,
        sha256=sha,
        upload_id=f"bench-{uuid.uuid4()}",
    )
    marks["upload_id"] = info.upload_id
    # FileService.UploadFile with the messages already serialized.
    call = channel.stream_unary(
        "/chat4all.v1.FileService/UploadFile",
        request_serializer=None,
        response_deserializer=files_pb2.UploadFileResponse.FromString,
    )

    def requests() -> Iterator[bytes]:
        yield files_pb2.UploadFileRequest(info=info).SerializeToString()
        first = True
        for data in chunks(size, chunk):
            if first:
                marks["first_chunk"] = time.perf_counter()
                first = False
            yield chunk_message(data)
        marks["last_chunk"] = time.perf_counter()

    return call(requests(), metadata=md, timeout=3600)


class Cleaner:
    """Deletes what a benchmark upload left: the object, its `files` row and its session row."""

    def __init__(self, settings: Settings) -> None:
        from chat4all.cassandra import connect
        from chat4all.s3 import s3_client

        self.settings = settings
        self.session = connect(settings)
        self.s3 = s3_client(settings)

    def file(self, file_id: str, upload_id: str | None) -> None:
        fid = uuid.UUID(file_id)
        row = self.session.execute(
            "SELECT object_key, uploader_id FROM files WHERE file_id = %s", (fid,)
        ).one()
        if row is not None:
            self.s3.remove_object(self.settings.s3_bucket, row.object_key)
        self.session.execute("DELETE FROM files WHERE file_id = %s", (fid,))
        if upload_id and row is not None:  # sessions are keyed by (uploader, upload_id)
            self.session.execute(
                "DELETE FROM upload_sessions WHERE uploader_id = %s AND upload_id = %s",
                (row.uploader_id, upload_id),
            )

    def close(self) -> None:
        self.session.cluster.shutdown()


def run_upload(
    api: ApiClient,
    server: ApiProcess,
    md,
    conversation_id: str,
    *,
    size: int,
    chunk: int,
    digest: str,
    meter: CpuMeter,
    py_spy: str | None,
) -> dict[str, object]:
    idle = rss_kib(server.proc.pid)
    sampler = RssSampler(server.proc.pid)
    sampler.start()
    spy = None
    if py_spy:
        spy = subprocess.Popen(
            [
                str(REPO_ROOT / ".venv" / "bin" / "py-spy"),
                "record",
                "-p",
                str(server.proc.pid),
                "-r",
                "100",
                "-f",
                "raw",
                "-o",
                py_spy,
                "--nonblocking",
                "--idle",
                "--threads",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    marks: dict = {}
    cpu_before = meter.sample()
    start = time.perf_counter()
    result = upload(api.channel, md, conversation_id, size, chunk, digest, marks)
    end = time.perf_counter()
    cpu = meter.since(cpu_before)
    sampler.stop_event.set()
    sampler.join()
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        spy.wait(30)
    assert result.sha256 == digest and result.size == size
    seconds = end - marks.get("first_chunk", start)
    return {
        "seconds": round(seconds, 2),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "finish_seconds": round(end - marks.get("last_chunk", end), 2),
        "api_rss_idle_mib": round(idle / 1024, 1),
        "api_rss_peak_mib": round(sampler.peak / 1024, 1),
        "api_rss_growth_mib": round((sampler.peak - idle) / 1024, 1),
        "cpu_seconds": cpu,
        "file_id": result.file_id,
        "upload_id": marks["upload_id"],
    }


def s3_ceiling(settings: Settings, *, size: int, in_flight: int, signed: bool) -> dict[str, object]:
    """``size`` bytes as a multipart upload straight into S3 (the API's part size), parts ``in_flight`` at a time."""
    from chat4all.objectstore import build_object_store

    store = build_object_store(settings.model_copy(update={"s3_signed_payload": signed}))
    part_bytes = settings.upload_part_bytes
    data = bytearray(os.urandom(part_bytes))
    key = f"bench/ceiling/{uuid.uuid4()}"
    s3proxy = stack_pid(settings, "s3proxy")

    async def go() -> dict[str, object]:
        cpu0, t0 = cpu_seconds(s3proxy), time.perf_counter()
        s3_upload_id = await store.create_multipart(key, content_type="application/octet-stream")
        gate = asyncio.Semaphore(in_flight)
        count = -(-size // part_bytes)

        async def one(number: int) -> tuple[int, str]:
            n = min(part_bytes, size - (number - 1) * part_bytes)
            async with gate:
                body = data if n == part_bytes else data[:n]
                return number, await store.upload_part(
                    key, s3_upload_id=s3_upload_id, part_number=number, data=body
                )

        parts = await asyncio.gather(*(one(i) for i in range(1, count + 1)))
        cpu1, t1 = cpu_seconds(s3proxy), time.perf_counter()
        await store.complete_multipart(key, s3_upload_id=s3_upload_id, parts=sorted(parts))
        cpu2, t2 = cpu_seconds(s3proxy), time.perf_counter()
        await store.delete(key)
        return {
            "signed_payload": signed,
            "parts_in_flight": in_flight,
            "parts_mb_per_s": round(size / 1e6 / (t1 - t0), 1),
            "complete_seconds": round(t2 - t1, 2),
            "seconds": round(t2 - t0, 2),
            "mb_per_s": round(size / 1e6 / (t2 - t0), 1),
            "s3proxy_cpu_seconds_parts": round(cpu1 - cpu0, 1),
            "s3proxy_cpu_seconds_complete": round(cpu2 - cpu1, 1),
        }

    return asyncio.run(go())


def markdown(report: dict, yardstick: YardstickResult | None = None) -> str:
    lines = [
        f"Upload benchmark {report['date']}: {report['size_mib']} MiB in {report['chunk_mib']} MiB chunks, "
        f"part {report['part_mib']} MiB, {report['parts_in_flight']} parts in flight, "
        f"signed payload {report['signed_payload']}; load average before: {report['load_average']}",
        "",
        *yardstick_lines(yardstick),
        "| run | MB/s | seconds | of which assembling | API RSS growth MiB | CPU s api / s3proxy / cassandra / client |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(report["runs"], 1):
        c = r["cpu_seconds"]
        lines.append(
            f"| {i} | {r['mb_per_s']} | {r['seconds']} | {r['finish_seconds']} | {r['api_rss_growth_mib']} | "
            f"{c['api']} / {c['s3proxy']} / {c['cassandra']} / {c['client']} |"
        )
    lines += [
        "",
        f"median {report['median_mb_per_s']} MB/s, largest RSS growth {report['max_rss_growth_mib']} MiB",
        "",
    ]
    if report["ceiling"]:
        lines += [
            "Raw S3 ceiling (MinIO SDK, no API):",
            "",
            "| signed payload | parts in flight | MB/s | parts MB/s | complete s | S3Proxy CPU s parts / complete |",
            "|---|---|---|---|---|---|",
        ]
        for c in report["ceiling"]:
            lines.append(
                f"| {c['signed_payload']} | {c['parts_in_flight']} | {c['mb_per_s']} | {c['parts_mb_per_s']} | "
                f"{c['complete_seconds']} | {c['s3proxy_cpu_seconds_parts']} / {c['s3proxy_cpu_seconds_complete']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--chunk-mib", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-ceiling", dest="ceiling", action="store_false", help="skip the raw S3 measurement"
    )
    parser.add_argument("--keep", action="store_true", help="keep the uploaded objects")
    parser.add_argument(
        "--py-spy", metavar="PATH", help="record the API with py-spy (raw format) during the first run"
    )
    add_yardstick_arg(parser)
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default bench/results/upload-<time>)"
    )
    args = parser.parse_args()
    size, chunk = args.size_mib * MiB, int(args.chunk_mib * MiB)
    settings = get_settings().model_copy(update={"topic_prefix": TOPIC_PREFIX})
    free = shutil.disk_usage(settings.stack_dir).free
    if free < 3 * size:  # the parts, the assembled object, and slack
        sys.exit(f"only {free // MiB} MiB free under {settings.stack_dir}; need about {3 * size // MiB}")
    yardstick = measure_yardstick(settings.kafka_bootstrap, args.yardstick_messages)

    sample = next(chunks(chunk, chunk))
    assert chunk_message(sample) == files_pb2.UploadFileRequest(chunk=sample).SerializeToString()
    sha = hashlib.sha256()
    for data in chunks(size, chunk):
        sha.update(data)
    digest = sha.hexdigest()

    from cli.stack.bootstrap import create_topics

    create_topics(settings)  # the gateway's own topics; a no-op once they exist
    started = datetime.now(UTC)
    load = os.getloadavg()
    server = start_api({"CHAT4ALL_TOPIC_PREFIX": TOPIC_PREFIX, "CHAT4ALL_LOG_LEVEL": "WARNING"})
    api = client_for(server)
    cleaner = Cleaner(settings)
    runs: list[dict] = []
    try:
        alice, bob = api.register_and_login("bench-alice"), api.register_and_login("bench-bob")
        conversation_id = api.private_conversation(alice, bob, timeout=15)
        stub = api.stub(files_pb2_grpc.FileServiceStub)
        # Warm-up: a small upload loads the file service's clients and statements.
        small = b"warm-up" * 1000
        warm = stub.UploadFile(
            iter(
                [
                    files_pb2.UploadFileRequest(
                        info=files_pb2.FileInfo(
                            conversation_id=conversation_id,
                            filename="w.bin",
                            size=len(small),
                            sha256=hashlib.sha256(small).hexdigest(),
                            upload_id=f"bench-warm-{uuid.uuid4()}",
                        )
                    ),
                    files_pb2.UploadFileRequest(chunk=small),
                ]
            ),
            metadata=alice.md,
            timeout=60,
        )
        cleaner.file(warm.file_id, None)
        time.sleep(1.0)
        meter = CpuMeter(
            {
                "api": server.proc.pid,
                "s3proxy": stack_pid(settings, "s3proxy"),
                "cassandra": stack_pid(settings, "cassandra"),
                "client": os.getpid(),
            }
        )
        for i in range(args.runs):
            run = run_upload(
                api,
                server,
                alice.md,
                conversation_id,
                size=size,
                chunk=chunk,
                digest=digest,
                meter=meter,
                py_spy=args.py_spy if i == 0 else None,
            )
            runs.append(run)
            print(f"run {i + 1}: {json.dumps(run)}", file=sys.stderr)
            if not args.keep:
                cleaner.file(run["file_id"], run["upload_id"])
            time.sleep(2.0)
    finally:
        with contextlib.suppress(Exception):
            api.channel.close()
        server.stop(30)
        cleaner.close()

    ceiling = []
    if args.ceiling:
        ceiling.append(s3_ceiling(settings, size=size, in_flight=1, signed=settings.s3_signed_payload))
        ceiling.append(
            s3_ceiling(
                settings,
                size=size,
                in_flight=settings.upload_parts_in_flight,
                signed=settings.s3_signed_payload,
            )
        )
        if not settings.s3_signed_payload:
            ceiling.append(s3_ceiling(settings, size=size, in_flight=1, signed=True))

    report = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, the local stack, API and client on one host",
        "load_average": [round(x, 1) for x in load],
        "size_mib": args.size_mib,
        "chunk_mib": args.chunk_mib,
        "part_mib": settings.upload_part_bytes / MiB,
        "parts_in_flight": settings.upload_parts_in_flight,
        "signed_payload": settings.s3_signed_payload,
        "yardstick": asdict(yardstick) if yardstick else None,
        "runs": runs,
        "median_mb_per_s": statistics.median(r["mb_per_s"] for r in runs) if runs else None,
        "max_rss_growth_mib": max((r["api_rss_growth_mib"] for r in runs), default=None),
        "ceiling": ceiling,
    }
    out = args.out or REPO_ROOT / "bench" / "results" / f"upload-{started:%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report, yardstick)
    (out / "table.md").write_text(table)
    print(table)
    print(f"results in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
