"""Settings from env on their own API: short lifetimes (presigned URLs refused by S3, stale sessions cleaned up), the stream cap."""

from __future__ import annotations

import hashlib
import re
import time

import grpc
import pytest
import urllib3

from chat4all.v1 import files_pb2, files_pb2_grpc
from tests.integration.files.helpers import CutStream, MiB, info_for, session_row, status_code

pytestmark = pytest.mark.integration

SHORT = {
    "CHAT4ALL_PRESIGNED_URL_TTL_SECONDS": "2",
    "CHAT4ALL_UPLOAD_SESSION_TTL_SECONDS": "2",
    "CHAT4ALL_UPLOAD_CLEANUP_INTERVAL_SECONDS": "0.5",
}


@pytest.fixture
def short_lived(api_factory):
    return api_factory(SHORT)


def test_expired_url_is_refused_by_s3(short_lived, room) -> None:
    stub = short_lived.stub(files_pb2_grpc.FileServiceStub)
    data = b"expiring" * 4096
    info = info_for(room, data)
    done = stub.UploadFile(
        iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data)]),
        metadata=room.alice.md,
        timeout=30,
    )
    answer = stub.GetDownloadUrl(
        files_pb2.GetDownloadUrlRequest(file_id=done.file_id), metadata=room.bob.md, timeout=10
    )
    assert answer.expires_at.seconds - time.time() <= 3

    fresh = urllib3.request("GET", answer.url)
    assert fresh.status == 200 and hashlib.sha256(fresh.data).hexdigest() == info.sha256
    # The filename given at upload comes back as the download's name.
    assert 'filename="blob.bin"' in fresh.headers.get("Content-Disposition", "")

    time.sleep(3.5)
    stale = urllib3.request("GET", answer.url)
    assert stale.status == 403
    assert b"expired" in stale.data.lower()

    tampered = urllib3.request("GET", answer.url.replace("X-Amz-Expires=2", "X-Amz-Expires=3600"))
    assert tampered.status == 403  # the signature covers the expiry


def test_stale_session_is_cleaned_up(short_lived, room, cql, s3, settings) -> None:
    stub = short_lived.stub(files_pb2_grpc.FileServiceStub)
    data = b"s" * (12 * MiB)
    info = info_for(room, data)
    partial = [files_pb2.UploadFileRequest(info=info)] + [
        files_pb2.UploadFileRequest(chunk=data[i : i + MiB]) for i in range(0, 10 * MiB, MiB)
    ]
    with pytest.raises(grpc.RpcError) as exc:
        stub.UploadFile(iter(partial), metadata=room.alice.md, timeout=30)
    assert status_code(exc) == grpc.StatusCode.ABORTED
    row = session_row(cql, info.upload_id)
    assert row.s3_upload_id and row.parts and row.tail_bytes
    assert s3._list_parts(settings.s3_bucket, row.object_key, row.s3_upload_id).parts

    deadline = time.monotonic() + 15
    while session_row(cql, info.upload_id) is not None and time.monotonic() < deadline:
        time.sleep(0.25)
    assert session_row(cql, info.upload_id) is None, "the expired session was not cleaned up"
    assert s3._list_parts(settings.s3_bucket, row.object_key, row.s3_upload_id).parts == []
    assert list(s3.list_objects(settings.s3_bucket, prefix=f"staging/{row.file_id}/", recursive=True)) == []
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=info.upload_id), metadata=room.alice.md
        )
    assert status_code(exc) == grpc.StatusCode.NOT_FOUND
    assert re.search(r"cleaned up \d+ expired upload sessions", short_lived.server.log())


def test_upload_streams_over_the_cap_are_told_to_retry(api_factory, room) -> None:
    capped = api_factory({"CHAT4ALL_UPLOAD_MAX_STREAMS": "1"})
    stub = capped.stub(files_pb2_grpc.FileServiceStub)
    data = b"c" * (2 * MiB)
    holder = CutStream(info_for(room, data), data, cut_at=MiB, hold=True)
    held = stub.UploadFile.future(iter(holder), metadata=room.alice.md)
    assert holder.reached.wait(30)
    time.sleep(0.5)

    other = info_for(room, b"small")
    request = [files_pb2.UploadFileRequest(info=other), files_pb2.UploadFileRequest(chunk=b"small")]
    with pytest.raises(grpc.RpcError) as exc:
        stub.UploadFile(iter(request), metadata=room.bob.md, timeout=10)
    assert status_code(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED

    holder.release.set()  # the first stream ends (early): its slot is free again
    with pytest.raises(grpc.RpcError):
        held.result(timeout=30)
    assert stub.UploadFile(iter(request), metadata=room.alice.md, timeout=10).size == 5
