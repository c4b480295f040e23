"""The MinIO SDK's private multipart calls we depend on, each on the real S3 server."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from chat4all.objectstore import build_object_store

pytestmark = pytest.mark.integration


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
