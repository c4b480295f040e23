"""FileInfo validation without servers: bad infos refused, limits inclusive."""

from __future__ import annotations

import uuid

import pytest

from api.files.errors import InvalidUpload
from api.files.uploader import Uploader
from api.files.validation import UploadRequest

GOOD = dict(
    uploader_id=uuid.uuid4(),
    conversation_id=uuid.uuid4(),
    filename="a.txt",
    mime_type="text/plain",
    size=10,
    sha256="a" * 64,
    upload_id="u-1",
)


def uploader() -> Uploader:
    # Stores are not touched by validate().
    return Uploader(
        sessions=None,
        records=None,
        objects=None,
        max_file_bytes=2 * 1024**3,  # type: ignore[arg-type]
        part_bytes=8 * 1024**2,
        max_chunk_bytes=4 * 1024**2,
        session_ttl_seconds=60,
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"size": 2 * 1024**3 + 1}, "over the limit of 2147483648"),
        ({"size": -1}, "negative"),
        ({"sha256": "A" * 64}, "lowercase hex"),
        ({"sha256": "a" * 63}, "lowercase hex"),
        ({"upload_id": ""}, "upload_id"),
        ({"upload_id": "x" * 129}, "upload_id"),
        ({"filename": ""}, "filename"),
        ({"filename": "../etc/passwd"}, "filename"),
        ({"filename": "x" * 256}, "filename"),
        ({"mime_type": "m" * 256}, "mime_type"),
        ({"filename": "a\r\nSet-Cookie: x"}, "filename"),
        ({"upload_id": "id\nforged log line"}, "upload_id"),
        ({"offset": -5}, "offset"),
    ],
)
def test_bad_file_info_is_refused(change: dict, needle: str) -> None:
    with pytest.raises(InvalidUpload, match=needle):
        uploader().validate(UploadRequest(**{**GOOD, **change}))


def test_limits_are_inclusive() -> None:
    uploader().validate(UploadRequest(**{**GOOD, "upload_id": "x" * 128, "size": 0}))
    uploader().validate(UploadRequest(**{**GOOD, "size": 2 * 1024**3}))
