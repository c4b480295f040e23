"""The MinIO SDK's private multipart calls we depend on: their signatures, and each call on the real S3 server."""

from __future__ import annotations

import hashlib
import os
import uuid

import minio
import pytest
from minio import Minio

from chat4all import objectstore
from chat4all.objectstore import (
    PINNED_MINIO_VERSION,
    UNSIGNED_BODY_BYTES,
    ObjectStore,
    PrivateApiMismatch,
    UnsignedBodyMinio,
    build_object_store,
)


def test_installed_minio_is_the_pinned_one() -> None:
    # Upgrading minio: re-run this file against the real server, then move the pin (docs/files.md).
    assert minio.__version__ == PINNED_MINIO_VERSION
    objectstore.check_private_api()


def test_a_changed_private_signature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def _upload_part(self, bucket_name, object_name, data, headers, part_number, upload_id):
        raise AssertionError("never called")

    monkeypatch.setattr(Minio, "_upload_part", _upload_part)
    with pytest.raises(PrivateApiMismatch, match="_upload_part"):
        ObjectStore(client=Minio("127.0.0.1:1", secure=False), bucket="b")


def test_large_bodies_go_unsigned_small_ones_stay_signed() -> None:
    client = UnsignedBodyMinio("127.0.0.1:1", access_key="a", secret_key="b", secure=False)
    creds = client._provider.retrieve()
    headers, _ = client._build_headers("127.0.0.1:1", {}, bytearray(UNSIGNED_BODY_BYTES), creds)
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert headers["Content-Length"] == str(UNSIGNED_BODY_BYTES)
    xml = b"<CompleteMultipartUpload/>"
    headers, _ = client._build_headers("127.0.0.1:1", {}, xml, creds)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(xml).hexdigest()


def test_signed_payload_setting_keeps_the_sdk_client(settings) -> None:
    assert type(build_object_store(settings.model_copy(update={"s3_signed_payload": True}))._client) is Minio
    assert (
        type(build_object_store(settings.model_copy(update={"s3_signed_payload": False}))._client)
        is UnsignedBodyMinio
    )


@pytest.mark.integration
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned-bodies", "signed-bodies"])
async def test_multipart_calls_on_the_real_server(settings, signed: bool) -> None:
    store = build_object_store(settings.model_copy(update={"s3_signed_payload": signed}))
    await store.ensure_bucket()
    await store.ensure_bucket()  # idempotent
    key = f"tests/objectstore/{uuid.uuid4()}"
    first, last = os.urandom(5 * 1024 * 1024), os.urandom(1234)

    upload_id = await store.create_multipart(key, content_type="application/x-test")
    etag_1 = await store.upload_part(
        key, s3_upload_id=upload_id, part_number=1, data=os.urandom(5 * 1024 * 1024)
    )
    # Re-uploading a part number replaces it (a resumed stream re-sends a part it could not record).
    etag_1 = await store.upload_part(key, s3_upload_id=upload_id, part_number=1, data=bytearray(first))
    etag_2 = await store.upload_part(key, s3_upload_id=upload_id, part_number=2, data=last)
    await store.complete_multipart(key, s3_upload_id=upload_id, parts=[(1, etag_1), (2, etag_2)])
    assert await store.size_of(key) == len(first) + len(last)
    assert await store.sha256_of(key) == hashlib.sha256(first + last).hexdigest()
    assert await store.read(key, length=10) == first[:10]

    doomed = f"{key}-aborted"
    doomed_id = await store.create_multipart(doomed, content_type="application/x-test")
    await store.upload_part(doomed, s3_upload_id=doomed_id, part_number=1, data=last)
    await store.abort_multipart(doomed, s3_upload_id=doomed_id)
    await store.abort_multipart(doomed, s3_upload_id=doomed_id)  # already gone: not an error
    assert await store.size_of(doomed) is None

    # A tail over 5 MiB is one PUT too (the SDK's put_object would make it a multipart upload).
    await store.put(f"{key}-big", bytearray(first + last))
    assert "-" not in store._client.stat_object(store.bucket, f"{key}-big").etag
    assert await store.sha256_of(f"{key}-big") == hashlib.sha256(first + last).hexdigest()
    await store.delete(f"{key}-big")

    await store.put(f"{key}-staging/0", b"tail")
    assert await store.delete_prefix(f"{key}-staging/") == 1
    await store.delete(key)
    await store.delete(key)
    assert await store.size_of(key) is None
