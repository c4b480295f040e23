"""Helpers for FileService tests: random files, cut streams, session rows."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from chat4all.v1 import files_pb2, files_pb2_grpc

MiB = 1024 * 1024


def info_for(room, data: bytes, **overrides) -> files_pb2.FileInfo:
    fields = dict(
        conversation_id=room.conversation_id,
        filename="blob.bin",
        mime_type="application/octet-stream",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=f"test-{uuid.uuid4()}",
    )
    fields.update(overrides)
    return files_pb2.FileInfo(**fields)


def wait_status(files, md, upload_id: str, expected: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = files.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=upload_id), metadata=md, timeout=10
        )
        if got.bytes_received == expected or time.monotonic() > deadline:
            return got.bytes_received
        time.sleep(0.2)


def session_row(cql, upload_id: str, uploader_id: str | None = None):
    """The upload_sessions row of ``upload_id`` (test upload ids are unique, so the uploader is optional)."""
    if uploader_id is not None:
        return cql.execute(
            "SELECT * FROM upload_sessions WHERE uploader_id = %s AND upload_id = %s",
            (uuid.UUID(uploader_id), upload_id),
        ).one()
    return cql.execute(
        "SELECT * FROM upload_sessions WHERE upload_id = %s ALLOW FILTERING", (upload_id,)
    ).one()


def write_random(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            f.write(block)
            left -= len(block)
    return path


class CutStream:
    """A request stream that sends info and chunks up to ``cut_at`` bytes, then holds until released.

    Lets a test cancel the call (a cut connection) at a known point, or end the stream early.
    """

    def __init__(
        self,
        info: files_pb2.FileInfo,
        data: bytes,
        *,
        start: int = 0,
        cut_at: int,
        chunk: int = MiB,
        hold: bool = True,
    ) -> None:
        self.info, self.data, self.start, self.cut_at, self.chunk, self.hold = (
            info,
            data,
            start,
            cut_at,
            chunk,
            hold,
        )
        self.sent = start
        self.reached = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[files_pb2.UploadFileRequest]:
        yield files_pb2.UploadFileRequest(info=self.info)
        while self.sent < self.cut_at:
            end = min(self.sent + self.chunk, self.cut_at)
            yield files_pb2.UploadFileRequest(chunk=self.data[self.sent : end])
            self.sent = end
        self.reached.set()
        if self.hold:
            self.release.wait(60)


def cut_upload(
    files: files_pb2_grpc.FileServiceStub,
    md,
    info: files_pb2.FileInfo,
    data: bytes,
    *,
    cut_at: int,
    start: int = 0,
    settle: float = 1.0,
) -> None:
    """Send bytes up to ``cut_at``, then cancel the call as a dropped connection would."""
    stream = CutStream(info, data, start=start, cut_at=cut_at)
    future = files.UploadFile.future(iter(stream), metadata=md)
    assert stream.reached.wait(60), "the stream never reached the cut"
    time.sleep(settle)  # let the server read what is in flight
    future.cancel()
    stream.release.set()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()


def status_code(exc_info: pytest.ExceptionInfo) -> grpc.StatusCode:
    return exc_info.value.code()


class CuttingProxy:
    """A TCP proxy to ``target`` that drops one connection once the bytes counted pass ``cut_after``.

    The bytes counted are those sent upstream, or downstream if ``count_downstream``, over all
    connections; the cut happens once, then it passes everything, so a client that reconnects and
    resumes gets through.
    """

    def __init__(self, target: str, *, cut_after: int, count_downstream: bool = False) -> None:
        import socket

        host, port = target.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.cut_after = cut_after
        self.count_downstream = count_downstream
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            pair = (client, server)
            up, down = not self.count_downstream, self.count_downstream
            threading.Thread(target=self._pump, args=(client, server, pair, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, pair, down), daemon=True).start()

    def _pump(self, src, dst, pair, counted: bool) -> None:
        import socket

        try:
            while data := src.recv(256 * 1024):
                dst.sendall(data)
                if counted:
                    with self._lock:
                        self._counted += len(data)
                        cut = self.cuts == 0 and self._counted >= self.cut_after
                        if cut:
                            self.cuts += 1
                    if cut:
                        break
        except OSError:
            pass
        for s in pair:  # one side ended or the cut came: drop both, like a broken link
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
