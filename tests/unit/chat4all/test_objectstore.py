"""The MinIO SDK's private multipart calls we depend on: the pinned version, their signatures, which bodies are signed."""

from __future__ import annotations

import hashlib

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
