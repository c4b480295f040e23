"""Upload benchmark: streams a large generated file (2 GiB by default) through a fresh API process and
reports the API's idle and peak resident memory and the throughput. Not a test; needs the local stack.

    .venv/bin/python bench/upload_bench.py                     # 2 GiB, 1 MiB chunks
    .venv/bin/python bench/upload_bench.py --size-mib 512 --chunk-mib 4 --keep

The data is generated on the fly from one 4 MiB random block (each chunk stamped with its
index), twice: once to compute the SHA-256 the first message declares, once to send it. The
client never holds more than one chunk. The object is deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from chat4all.v1 import (  # noqa: E402 - after the path set-up, so that it runs from a checkout
    auth_pb2,
    auth_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    files_pb2,
    files_pb2_grpc,
)

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
BLOCK = os.urandom(4 * MiB)


def chunks(size: int, chunk: int) -> Iterator[bytes]:
    """``size`` bytes of generated data in ``chunk``-sized pieces; the same bytes on every call."""
    sent, index = 0, 0
    while sent < size:
        n = min(chunk, size - sent)
        stamp = index.to_bytes(8, "big")
        yield stamp + BLOCK[8:n] if n > 8 else stamp[:n]
        sent += n
        index += 1


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CHAT4ALL_API_PORT": str(port), "CHAT4ALL_API_METRICS_PORT": str(free_port()),
           "CHAT4ALL_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(REPO_ROOT / ".venv" / "bin" / "chat4all"), "api"], env=env, cwd=REPO_ROOT,
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    target = f"127.0.0.1:{port}"
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited: {log_path.read_text()[-2000:]}")
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return proc, target
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("API not ready in 60 s")


def user(channel: grpc.Channel, name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    username, password = f"{name}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    auth.Register(auth_pb2.RegisterRequest(username=username, password=password), timeout=15)
    login = auth.Login(auth_pb2.LoginRequest(username=username, password=password), timeout=15)
    return login.user_id, (("authorization", f"Bearer {login.access_token}"),)


def upload(stub, md, conversation_id: str, size: int, chunk: int, sha: str, marks: dict) -> files_pb2.UploadFileResponse:  # noqa: ANN001
    info = files_pb2.FileInfo(conversation_id=conversation_id, filename="bench.bin", mime_type="application/octet-stream",
                              size=size, sha256=sha, upload_id=f"bench-{uuid.uuid4()}")

    def requests() -> Iterator[files_pb2.UploadFileRequest]:
        yield files_pb2.UploadFileRequest(info=info)
        for data in chunks(size, chunk):
            yield files_pb2.UploadFileRequest(chunk=data)
        marks["last_chunk"] = time.perf_counter()

    return stub.UploadFile(requests(), metadata=md, timeout=3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--chunk-mib", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the uploaded object")
    args = parser.parse_args()
    size, chunk = args.size_mib * MiB, int(args.chunk_mib * MiB)

    t = time.perf_counter()
    sha = hashlib.sha256()
    for data in chunks(size, chunk):
        sha.update(data)
    digest = sha.hexdigest()
    print(f"generated {args.size_mib} MiB checksum in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"upload-bench-api-{os.getpid()}.log"
    proc, target = start_api(log_path)
    try:
        options = [("grpc.max_send_message_length", 8 * MiB)]
        with grpc.insecure_channel(target, options=options) as channel:
            _, alice_md = user(channel, "bench-alice")
            bob_id, _ = user(channel, "bench-bob")
            conversation = conversations_pb2_grpc.ConversationServiceStub(channel).CreateConversation(
                conversations_pb2.CreateConversationRequest(type=conversations_pb2.CONVERSATION_TYPE_PRIVATE,
                                                            participant_ids=[bob_id]), metadata=alice_md, timeout=15)
            stub = files_pb2_grpc.FileServiceStub(channel)
            idle_cold = rss_kib(proc.pid)
            # Warm-up: a small upload loads the file service's clients and statements.
            small = b"warm-up" * 1000
            stub.UploadFile(iter([files_pb2.UploadFileRequest(info=files_pb2.FileInfo(
                conversation_id=conversation.conversation_id, filename="w.bin", size=len(small),
                sha256=hashlib.sha256(small).hexdigest(), upload_id=f"bench-warm-{uuid.uuid4()}")),
                files_pb2.UploadFileRequest(chunk=small)]), metadata=alice_md, timeout=60)
            time.sleep(1.0)
            idle = rss_kib(proc.pid)

            sampler = RssSampler(proc.pid)
            sampler.start()
            marks: dict[str, float] = {}
            start = time.perf_counter()
            result = upload(stub, alice_md, conversation.conversation_id, size, chunk, digest, marks)
            elapsed = time.perf_counter() - start
            sampler.stop_event.set()
            sampler.join()
            assert result.sha256 == digest and result.size == size
        report = {
            "size_mib": args.size_mib,
            "chunk_mib": args.chunk_mib,
            "part_mib": int(os.environ.get("CHAT4ALL_UPLOAD_PART_BYTES", 8 * MiB)) / MiB,
            "api_rss_idle_cold_mib": round(idle_cold / 1024, 1),
            "api_rss_idle_mib": round(idle / 1024, 1),
            "api_rss_peak_mib": round(sampler.peak / 1024, 1),
            "api_rss_growth_mib": round((sampler.peak - idle) / 1024, 1),
            "seconds": round(elapsed, 1),
            "mb_per_s": round(size / 1e6 / elapsed, 1),
            "mib_per_s": round(size / MiB / elapsed, 1),
            "finish_seconds": round(start + elapsed - marks.get("last_chunk", start + elapsed), 1),
            "file_id": result.file_id,
        }
        print(json.dumps(report, indent=2))
        if not args.keep:
            from chat4all.cassandra import connect
            from chat4all.objectstore import build_object_store
            from chat4all.settings import get_settings

            settings = get_settings()
            session = connect(settings)
            file_id = uuid.UUID(result.file_id)
            row = session.execute("SELECT object_key FROM files WHERE file_id = %s", (file_id,)).one()
            session.execute("DELETE FROM files WHERE file_id = %s", (file_id,))
            session.cluster.shutdown()
            store = build_object_store(settings)
            store._client.remove_object(settings.s3_bucket, row.object_key)
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
