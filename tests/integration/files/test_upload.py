"""Uploads through the real API into the real S3 server: cut and resume, checksums, limits."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import grpc
import pytest
import urllib3
from minio.error import S3Error

from chat4all.v1 import files_pb2
from cli.files import upload_file
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


def test_64mib_cut_at_30mib_then_resumed_and_downloaded(
    api, files, room, cql, s3, settings, tmp_path: Path
) -> None:
    path = write_random(tmp_path / "big.bin", 64 * MiB)
    data = path.read_bytes()
    info = info_for(room, data)

    cut_upload(files, room.alice.md, info, data, cut_at=30 * MiB)
    # Every received byte is durable, the 6 MiB after the last 8 MiB part included.
    assert wait_status(files, room.alice.md, info.upload_id, 30 * MiB) == 30 * MiB
    row = session_row(cql, info.upload_id)
    assert row.tail_bytes == 30 * MiB - sum(p[2] for p in row.parts) > 0
    staged = s3.stat_object(settings.s3_bucket, f"staging/{row.file_id}/{30 * MiB - row.tail_bytes}")
    assert staged.size >= row.tail_bytes

    offsets: list[int] = []
    result = upload_file(
        api.channel,
        room.alice.md,
        path=path,
        conversation_id=room.conversation_id,
        upload_id=info.upload_id,
        sha256=info.sha256,
        on_attempt=lambda n, off: offsets.append(off),
    )
    assert offsets == [30 * MiB]  # resumed where the server stopped, in one stream
    assert result.size == 64 * MiB and result.sha256 == info.sha256
    assert result.file_id == str(row.file_id)
    # Same process: the hash state of the first 30 MiB was kept, no re-read was needed.
    assert f"upload {info.upload_id}: verifying the checksum" not in api.server.log()

    # Metadata written, staging gone, object where the design says.
    meta = cql.execute("SELECT * FROM files WHERE file_id = %s", (uuid.UUID(result.file_id),)).one()
    assert (
        meta.size == 64 * MiB and meta.sha256 == info.sha256 and str(meta.uploader_id) == room.alice.user_id
    )
    assert meta.object_key.endswith(f"/{result.file_id}") and meta.object_key.count("/") == 3
    assert (
        list(s3.list_objects(settings.s3_bucket, prefix=f"staging/{result.file_id}/", recursive=True)) == []
    )

    # Bob (a participant) downloads through the presigned URL: identical bytes.
    url = files.GetDownloadUrl(
        files_pb2.GetDownloadUrlRequest(file_id=result.file_id), metadata=room.bob.md, timeout=10
    )
    assert url.expires_at.seconds > time.time()
    body = urllib3.request("GET", url.url).data
    assert hashlib.sha256(body).hexdigest() == info.sha256 and len(body) == 64 * MiB

    # A retry of the finished upload gets the same file back without sending it again.
    again = upload_file(
        api.channel,
        room.alice.md,
        path=path,
        conversation_id=room.conversation_id,
        upload_id=info.upload_id,
        sha256=info.sha256,
    )
    assert again.file_id == result.file_id


def test_stream_ending_early_keeps_the_bytes_and_says_so(files, room) -> None:
    data = b"x" * (3 * MiB + 5)
    info = info_for(room, data)
    first = [files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data[: 2 * MiB + 1])]
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter(first), metadata=room.alice.md, timeout=30)
    assert status_code(exc) == grpc.StatusCode.ABORTED
    assert dict(exc.value.trailing_metadata())["bytes-received"] == str(2 * MiB + 1)
    # A resume that claims the wrong offset is refused before anything is appended.
    wrong = files_pb2.FileInfo()
    wrong.CopyFrom(info)
    wrong.offset = 5
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter([files_pb2.UploadFileRequest(info=wrong)]), metadata=room.alice.md, timeout=30)
    assert status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    # The right one completes; a tiny file never needs a multipart upload.
    info.offset = 2 * MiB + 1
    rest = [files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data[2 * MiB + 1 :])]
    done = files.UploadFile(iter(rest), metadata=room.alice.md, timeout=30)
    assert done.size == len(data)


def test_checksum_mismatch_leaves_nothing(files, room, cql, s3, settings) -> None:
    data = bytes(range(256)) * (12 * MiB // 256)  # 12 MiB: one part in S3, then the rest
    info = info_for(room, data, sha256=hashlib.sha256(b"something else").hexdigest())
    cut = [files_pb2.UploadFileRequest(info=info)] + [
        files_pb2.UploadFileRequest(chunk=data[i : i + MiB]) for i in range(0, 10 * MiB, MiB)
    ]
    with pytest.raises(grpc.RpcError):
        files.UploadFile(iter(cut), metadata=room.alice.md, timeout=30)
    row = session_row(cql, info.upload_id)
    assert row.s3_upload_id and row.parts and row.tail_bytes  # parts and a staged tail exist now
    assert len(s3._list_parts(settings.s3_bucket, row.object_key, row.s3_upload_id).parts) == len(row.parts)

    info.offset = 10 * MiB
    rest = [files_pb2.UploadFileRequest(info=info)] + [
        files_pb2.UploadFileRequest(chunk=data[i : i + MiB]) for i in range(10 * MiB, 12 * MiB, MiB)
    ]
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter(rest), metadata=room.alice.md, timeout=30)
    assert status_code(exc) == grpc.StatusCode.DATA_LOSS
    assert "SHA-256" in exc.value.details()

    assert session_row(cql, info.upload_id) is None
    assert cql.execute("SELECT * FROM files WHERE file_id = %s", (row.file_id,)).one() is None
    with pytest.raises(S3Error):
        s3.stat_object(settings.s3_bucket, row.object_key)
    assert list(s3.list_objects(settings.s3_bucket, prefix=f"staging/{row.file_id}/", recursive=True)) == []
    # The multipart upload was aborted (S3Proxy answers an empty list for an unknown upload id).
    assert s3._list_parts(settings.s3_bucket, row.object_key, row.s3_upload_id).parts == []
    with pytest.raises(grpc.RpcError) as exc:
        files.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=info.upload_id), metadata=room.alice.md
        )
    assert status_code(exc) == grpc.StatusCode.NOT_FOUND


def test_size_limits(files, room, cql, settings) -> None:
    over = info_for(room, b"", size=settings.max_file_bytes + 1, sha256="0" * 64)
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter([files_pb2.UploadFileRequest(info=over)]), metadata=room.alice.md, timeout=10)
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert str(settings.max_file_bytes) in exc.value.details()
    assert session_row(cql, over.upload_id) is None

    # More bytes than declared: refused at the chunk that crosses the size, session dropped.
    declared = b"a" * MiB
    info = info_for(room, declared)
    too_many = [files_pb2.UploadFileRequest(info=info)] + [files_pb2.UploadFileRequest(chunk=b"a" * MiB)] * 2
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter(too_many), metadata=room.alice.md, timeout=10)
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert "more bytes than the declared size" in exc.value.details()
    assert session_row(cql, info.upload_id) is None

    big_chunk = info_for(room, b"b" * 5 * MiB)
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(
            iter(
                [
                    files_pb2.UploadFileRequest(info=big_chunk),
                    files_pb2.UploadFileRequest(chunk=b"b" * (4 * MiB + 1)),
                ]
            ),
            metadata=room.alice.md,
            timeout=10,
        )
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT

    no_info = [files_pb2.UploadFileRequest(chunk=b"c")]
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter(no_info), metadata=room.alice.md, timeout=10)
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    bad_sha = info_for(room, b"", sha256="ABC")
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(
            iter([files_pb2.UploadFileRequest(info=bad_sha)]), metadata=room.alice.md, timeout=10
        )
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_only_participants_and_only_the_uploader(files, room) -> None:
    data = b"secret" * 1000
    info = info_for(room, data)
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(
            iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data)]),
            metadata=room.eve.md,
            timeout=10,
        )
    assert status_code(exc) == grpc.StatusCode.PERMISSION_DENIED

    half = [files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data[:100])]
    with pytest.raises(grpc.RpcError):
        files.UploadFile(iter(half), metadata=room.alice.md, timeout=10)
    # Bob takes part in the conversation but did not start this upload: upload ids are per
    # uploader, so to him (and to Eve) this one does not exist, and his stream with the same
    # upload_id is an upload of his own that leaves Alice's alone.
    for caller in (room.bob, room.eve):
        with pytest.raises(grpc.RpcError) as exc:
            files.GetUploadStatus(
                files_pb2.GetUploadStatusRequest(upload_id=info.upload_id), metadata=caller.md
            )
        assert status_code(exc) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(
            iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data[100:])]),
            metadata=room.bob.md,
            timeout=10,
        )
    assert status_code(exc) == grpc.StatusCode.ABORTED  # his own upload, short of its size
    assert (
        files.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=info.upload_id), metadata=room.alice.md
        ).bytes_received
        == 100
    )

    rest = [files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data[100:])]
    done = files.UploadFile(iter(rest), metadata=room.alice.md, timeout=10)
    with pytest.raises(grpc.RpcError) as exc:
        files.GetDownloadUrl(files_pb2.GetDownloadUrlRequest(file_id=done.file_id), metadata=room.eve.md)
    assert status_code(exc) == grpc.StatusCode.PERMISSION_DENIED
    assert files.GetDownloadUrl(
        files_pb2.GetDownloadUrlRequest(file_id=done.file_id), metadata=room.bob.md
    ).url
    with pytest.raises(grpc.RpcError) as exc:
        files.GetDownloadUrl(files_pb2.GetDownloadUrlRequest(file_id=str(uuid.uuid4())), metadata=room.bob.md)
    assert status_code(exc) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as exc:
        files.GetDownloadUrl(files_pb2.GetDownloadUrlRequest(file_id="nope"), metadata=room.bob.md)
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as exc:
        files.GetDownloadUrl(files_pb2.GetDownloadUrlRequest(file_id=done.file_id))
    assert status_code(exc) == grpc.StatusCode.UNAUTHENTICATED


def test_a_second_stream_of_the_same_upload_waits_then_is_fenced_by_offset(files, room) -> None:
    data = os.urandom(4 * MiB)
    info = info_for(room, data)
    first = CutStream(info, data, cut_at=2 * MiB, hold=True)
    first_call = files.UploadFile.future(iter(first), metadata=room.alice.md)
    assert first.reached.wait(30)
    time.sleep(0.5)

    second_info = files_pb2.FileInfo()
    second_info.CopyFrom(info)
    second_info.offset = 0  # what a client that believes nothing was stored would send
    second_call = files.UploadFile.future(
        iter([files_pb2.UploadFileRequest(info=second_info), files_pb2.UploadFileRequest(chunk=data[:MiB])]),
        metadata=room.alice.md,
    )
    time.sleep(1.0)
    assert not second_call.done(), "the second stream did not wait for the first"

    first.release.set()  # the first stream ends early: its 2 MiB are saved
    with pytest.raises(grpc.RpcError) as exc:
        first_call.result(timeout=30)
    assert status_code(exc) == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.RpcError) as exc:
        second_call.result(timeout=30)
    assert status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(exc.value.trailing_metadata())["bytes-received"] == str(2 * MiB)
