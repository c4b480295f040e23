"""What an upload stream's first message must say before anything is written: the FileInfo rules."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from api.files.errors import InvalidUpload

MAX_UPLOAD_ID = 128
MAX_FILENAME = 255
MAX_MIME_TYPE = 255
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, kw_only=True)
class UploadRequest:
    """The first message of an upload stream, with the authenticated caller."""

    uploader_id: uuid.UUID
    conversation_id: uuid.UUID
    filename: str
    mime_type: str
    size: int
    sha256: str
    upload_id: str
    offset: int | None = None


def validate_request(req: UploadRequest, *, max_file_bytes: int) -> None:
    """INVALID_ARGUMENT (InvalidUpload) for a FileInfo that cannot be uploaded."""
    if not req.upload_id or len(req.upload_id) > MAX_UPLOAD_ID or not req.upload_id.isprintable():
        raise InvalidUpload(f"upload_id must be 1 to {MAX_UPLOAD_ID} printable characters")
    if req.size < 0:
        raise InvalidUpload("size must not be negative")
    if req.size > max_file_bytes:
        raise InvalidUpload(f"size {req.size} is over the limit of {max_file_bytes} bytes")
    if not _SHA256_HEX.match(req.sha256):
        raise InvalidUpload("sha256 must be 64 lowercase hex characters")
    # Printable only: the name goes into the download's Content-Disposition header.
    if (
        not req.filename.strip()
        or len(req.filename) > MAX_FILENAME
        or "/" in req.filename
        or not req.filename.isprintable()
    ):
        raise InvalidUpload(f"filename must be 1 to {MAX_FILENAME} printable characters, without '/'")
    if len(req.mime_type) > MAX_MIME_TYPE or not req.mime_type.isprintable():
        raise InvalidUpload(f"mime_type must be at most {MAX_MIME_TYPE} printable characters")
    if req.offset is not None and req.offset < 0:
        raise InvalidUpload("offset must not be negative")
