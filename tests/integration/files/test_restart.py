"""Resuming uploads on a restarted API: after a clean cut, after SIGKILL, and a checksum mismatch found by re-reading."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import grpc
import pytest
from minio.error import S3Error

from chat4all.v1 import files_pb2, files_pb2_grpc
from cli.files import upload_file
from cli.harness.ports import free_port
from tests.integration.files.helpers import (
    CutStream,
    MiB,
    cut_upload,
    info_for,
    session_row,
    status_code,
    wait_status,
    write_random,
)

pytestmark = pytest.mark.integration


def test_resume_after_api_restart(api_factory, room, cql, s3, settings, tmp_path: Path) -> None:
    first = api_factory()
    stub = first.stub(files_pb2_grpc.FileServiceStub)

    path = write_random(tmp_path / "restart.bin", 40 * MiB)
    data = path.read_bytes()
    info = info_for(room, data)
    cut_upload(stub, room.alice.md, info, data, cut_at=20 * MiB)
    assert wait_status(stub, room.alice.md, info.upload_id, 20 * MiB) == 20 * MiB

    # A second upload, whose declared checksum is wrong, is still streaming when the API gets
    # SIGTERM: the shutdown cancels it after the grace period and its bytes are saved.
    bad = bytes(range(256)) * (12 * MiB // 256)
    bad_info = info_for(room, bad, sha256=hashlib.sha256(b"not this").hexdigest())
    open_stream = CutStream(bad_info, bad, cut_at=10 * MiB)
    future = stub.UploadFile.future(iter(open_stream), metadata=room.alice.md)
    assert open_stream.reached.wait(60)
    time.sleep(1.0)

    first.server.stop()  # SIGTERM while that stream is open
    open_stream.release.set()
    with pytest.raises(grpc.RpcError):
        future.result()
    second = api_factory()
    stub = second.stub(files_pb2_grpc.FileServiceStub)
    assert wait_status(stub, room.alice.md, info.upload_id, 20 * MiB, timeout=0) == 20 * MiB
    assert wait_status(stub, room.alice.md, bad_info.upload_id, 10 * MiB, timeout=0) == 10 * MiB
    bad_row = session_row(cql, bad_info.upload_id)

    offsets: list[int] = []
    done = upload_file(
        second.channel,
        room.alice.md,
        path=path,
        conversation_id=room.conversation_id,
        upload_id=info.upload_id,
        sha256=info.sha256,
        on_attempt=lambda n, off: offsets.append(off),
    )
    assert offsets == [20 * MiB]
    assert done.sha256 == info.sha256 and done.size == 40 * MiB
    meta = cql.execute("SELECT object_key FROM files WHERE file_id = %s", (uuid.UUID(done.file_id),)).one()
    stored = s3.get_object(settings.s3_bucket, meta.object_key)
    try:
        assert hashlib.sha256(stored.read()).hexdigest() == info.sha256
    finally:
        stored.close()
        stored.release_conn()
    # The new process had no hash state for the first 20 MiB: it re-read the object.
    assert f"upload {info.upload_id}: verifying the checksum by re-reading" in second.server.log()

    # The mismatching upload, resumed here, is caught by that re-read and leaves nothing.
    bad_info.offset = 10 * MiB
    rest = [files_pb2.UploadFileRequest(info=bad_info), files_pb2.UploadFileRequest(chunk=bad[10 * MiB :])]
    with pytest.raises(grpc.RpcError) as exc:
        stub.UploadFile(iter(rest), metadata=room.alice.md, timeout=60)
    assert status_code(exc) == grpc.StatusCode.DATA_LOSS
    assert session_row(cql, bad_info.upload_id) is None
    assert cql.execute("SELECT * FROM files WHERE file_id = %s", (bad_row.file_id,)).one() is None
    with pytest.raises(S3Error):
        s3.stat_object(settings.s3_bucket, bad_row.object_key)
    assert (
        list(s3.list_objects(settings.s3_bucket, prefix=f"staging/{bad_row.file_id}/", recursive=True)) == []
    )


def test_resume_after_api_killed_mid_stream(api_factory, room, settings, tmp_path: Path) -> None:
    victim = api_factory()
    stub = victim.stub(files_pb2_grpc.FileServiceStub)
    path = write_random(tmp_path / "killed.bin", 30 * MiB)
    data = path.read_bytes()
    info = info_for(room, data)

    stream = CutStream(info, data, cut_at=20 * MiB)
    future = stub.UploadFile.future(iter(stream), metadata=room.alice.md)
    assert stream.reached.wait(60)
    time.sleep(1.0)
    victim.server.proc.kill()  # SIGKILL: no chance to save the buffered tail
    victim.server.proc.wait(10)
    stream.release.set()
    with pytest.raises(grpc.RpcError):
        future.result()

    revived = api_factory()
    stub = revived.stub(files_pb2_grpc.FileServiceStub)
    status = stub.GetUploadStatus(
        files_pb2.GetUploadStatusRequest(upload_id=info.upload_id), metadata=room.alice.md
    )
    # Only whole parts were durable; the bytes after them died with the process, and are not counted.
    part = settings.upload_part_bytes
    assert status.bytes_received % part == 0 and 8 * MiB <= status.bytes_received <= 20 * MiB

    done = upload_file(
        revived.channel,
        room.alice.md,
        path=path,
        conversation_id=room.conversation_id,
        upload_id=info.upload_id,
        sha256=info.sha256,
    )
    assert done.sha256 == info.sha256 and done.size == 30 * MiB


def test_finish_interrupted_after_the_object_was_assembled(api, files, room, cql, s3, settings) -> None:
    """The API died after CompleteMultipartUpload but before the metadata: a resume finishes the job."""
    from minio.datatypes import Part

    data = os.urandom(12 * MiB)
    info = info_for(room, data)
    first = [files_pb2.UploadFileRequest(info=info)] + [
        files_pb2.UploadFileRequest(chunk=data[i : i + MiB]) for i in range(0, 10 * MiB, MiB)
    ]
    with pytest.raises(grpc.RpcError):
        files.UploadFile(iter(first), metadata=room.alice.md, timeout=30)
    row = session_row(cql, info.upload_id)
    assert [p[0] for p in row.parts] == [1] and row.bytes_received == 10 * MiB
    # What the dead process had done: the last part and the completion, nothing more.
    etag = s3._upload_part(settings.s3_bucket, row.object_key, data[8 * MiB :], None, row.s3_upload_id, 2)
    s3._complete_multipart_upload(
        settings.s3_bucket, row.object_key, row.s3_upload_id, [Part(1, row.parts[0][1]), Part(2, etag)]
    )

    info.offset = 10 * MiB
    rest = [files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data[10 * MiB :])]
    done = files.UploadFile(iter(rest), metadata=room.alice.md, timeout=60)
    assert done.file_id == str(row.file_id) and done.sha256 == info.sha256
    meta = cql.execute("SELECT size, sha256 FROM files WHERE file_id = %s", (row.file_id,)).one()
    assert meta.size == 12 * MiB and meta.sha256 == info.sha256


def test_object_storage_down_is_unavailable(api_factory, room) -> None:
    dead_s3 = api_factory({"CHAT4ALL_S3_PORT": str(free_port())}, wait_serving=False)
    stub = dead_s3.stub(files_pb2_grpc.FileServiceStub)
    data = b"z" * 1000
    info = info_for(room, data)
    with pytest.raises(grpc.RpcError) as exc:
        stub.UploadFile(
            iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data)]),
            metadata=room.alice.md,
            timeout=60,
        )
    assert status_code(exc) == grpc.StatusCode.UNAVAILABLE
    assert "object storage is unavailable" in exc.value.details()
