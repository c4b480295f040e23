"""S3 object and multipart-upload calls for file uploads, async over the MinIO SDK (pinned 7.2.20).

MinIO's Python SDK 7.2 has no public multipart API: ``put_object`` drives multipart itself
from a readable stream, which cannot survive a cut connection or a process restart. Resumable
uploads need the individual calls (create, upload part, complete, abort), which the SDK has
as private methods. We use those, knowingly: ``setup.cfg`` pins ``minio==7.2.20``, this module
checks the methods' signatures when it is built (``PrivateApiMismatch``), and
``tests/files/test_objectstore.py`` runs every call against the real S3 server. Upgrading
minio means re-running that test (docs/files.md).

Every SDK call blocks (urllib3), so each one runs in ``asyncio.to_thread``.

Request bodies of ``UNSIGNED_BODY_BYTES`` and more (parts, tails, small files) are sent with
``x-amz-content-sha256: UNSIGNED-PAYLOAD`` over plain http as well, unless
``CHAT4ALL_S3_SIGNED_PAYLOAD`` is set: the request itself stays signed (method, key, headers,
length), only the body is not covered. That is what the SDK does over https anyway; over http it
spares the SDK one SHA-256 of every part and spares S3Proxy buffering the body and hashing it
again: S3Proxy spends about a third less CPU on every part (docs/files.md).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import io
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import minio
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from chat4all import tracing
from chat4all.s3 import s3_client
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

PINNED_MINIO_VERSION = "7.2.20"

# The private methods we call and the parameter names we pass, as in minio 7.2.20.
PRIVATE_API: dict[str, tuple[str, ...]] = {
    "_create_multipart_upload": ("bucket_name", "object_name", "headers"),
    "_upload_part": ("bucket_name", "object_name", "data", "headers", "upload_id", "part_number"),
    "_complete_multipart_upload": ("bucket_name", "object_name", "upload_id", "parts"),
    "_abort_multipart_upload": ("bucket_name", "object_name", "upload_id"),
    "_build_headers": ("host", "headers", "body", "creds"),
}

_READ_BLOCK = 4 * 1024 * 1024
# Smaller bodies (the XML of complete, delete-objects and make-bucket requests) stay signed.
UNSIGNED_BODY_BYTES = 64 * 1024
_MIN_PART_SIZE = 5 * 1024 * 1024  # the SDK's: put_object below it never goes multipart
_Call = TypeVar("_Call", bound=Callable[..., Awaitable[Any]])


class PrivateApiMismatch(RuntimeError):
    """The installed minio's private multipart methods are not the ones this module was written for."""


def check_private_api() -> None:
    """Raise ``PrivateApiMismatch`` unless minio's private multipart methods take the expected parameters."""
    for name, expected in PRIVATE_API.items():
        method = getattr(Minio, name, None)
        if method is None:
            raise PrivateApiMismatch(
                f"minio {minio.__version__} has no Minio.{name}; pin minio=={PINNED_MINIO_VERSION}"
            )
        params = tuple(inspect.signature(method).parameters)[1:]
        if params[: len(expected)] != expected:
            raise PrivateApiMismatch(
                f"minio {minio.__version__}: Minio.{name}{params} differs from {expected}; "
                f"pin minio=={PINNED_MINIO_VERSION} or adapt chat4all/objectstore.py"
            )
    if minio.__version__ != PINNED_MINIO_VERSION:
        logger.warning(
            "minio %s is not the pinned %s; multipart uses its private API",
            minio.__version__,
            PINNED_MINIO_VERSION,
        )


def is_missing(exc: BaseException) -> bool:
    """Whether an S3 error says the object, key or multipart upload does not exist."""
    return isinstance(exc, S3Error) and exc.code in (
        "NoSuchKey",
        "NoSuchUpload",
        "NoSuchObject",
        "ResourceNotFound",
    )


def content_disposition(filename: str) -> str:
    """``attachment`` with the file's name: plain when ASCII, else an ASCII fallback plus RFC 6266 ``filename*``."""
    plain = filename.replace('"', "").replace("\\", "")
    if plain.isascii():
        return f'attachment; filename="{plain}"'
    fallback = plain.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class UnsignedBodyMinio(Minio):
    """A MinIO client that sends large request bodies as ``UNSIGNED-PAYLOAD`` over http too.

    Overrides the SDK's private ``_build_headers`` (checked by ``check_private_api``): for a body of
    ``UNSIGNED_BODY_BYTES`` or more it builds the headers as for a bodiless request, then declares
    the body's length and an unsigned payload. The signature still covers the request line and
    headers, Content-Length included.
    """

    def _build_headers(self, host, headers=None, body=None, creds=None):  # SDK's signature
        if body is None or creds is None or self._base_url.is_https or len(body) < UNSIGNED_BODY_BYTES:
            return super()._build_headers(host, headers, body, creds)
        built, date = super()._build_headers(host, headers, None, creds)
        built["Content-Length"] = str(len(body))
        built["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        return built, date


def _traced(operation: str) -> Callable[[_Call], _Call]:
    """An S3 call of ObjectStore in a CLIENT span ("s3 <operation>") while tracing is on."""

    def wrap(call: _Call) -> _Call:
        @functools.wraps(call)
        async def traced(self: ObjectStore, key: str, *args: Any, **kwargs: Any) -> Any:
            if not tracing.ENABLED:
                return await call(self, key, *args, **kwargs)
            attributes = {"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": operation}
            with tracing.client_span(
                f"s3 {operation}", {**attributes, "aws.s3.bucket": self.bucket, "aws.s3.key": key}
            ):
                return await call(self, key, *args, **kwargs)

        return traced  # type: ignore[return-value]

    return wrap


class ObjectStore:
    """One bucket's objects and multipart uploads, with every blocking call moved off the event loop.

    ``client`` talks to S3; ``presign_client`` (default: ``client``) only signs URLs, so that
    presigned URLs can name a host that clients reach (signing is offline).
    """

    def __init__(self, *, client: Minio, bucket: str, presign_client: Minio | None = None) -> None:
        check_private_api()
        self._client = client
        self._presign = presign_client or client
        self.bucket = bucket

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing."""

        def ensure() -> None:
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket)
                    logger.info("created bucket %s", self.bucket)
                except S3Error as exc:
                    # Another process may have created it between the two calls.
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        await asyncio.to_thread(ensure)

    # --- multipart -------------------------------------------------------------------------

    @_traced("CreateMultipartUpload")
    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload of ``key``; returns its S3 upload id."""
        headers = {"Content-Type": content_type or "application/octet-stream"}
        return await asyncio.to_thread(self._client._create_multipart_upload, self.bucket, key, headers)

    @_traced("UploadPart")
    async def upload_part(
        self, key: str, *, s3_upload_id: str, part_number: int, data: bytes | bytearray
    ) -> str:
        """Upload one part (>= 5 MiB unless it is the last); returns its ETag. Re-uploading a number replaces it.

        A bytearray is sent as it is (urllib3 takes any buffer; minio only hashes and measures
        it), which spares a copy of every part.
        """
        return await asyncio.to_thread(
            self._client._upload_part, self.bucket, key, data, None, s3_upload_id, part_number
        )

    @_traced("CompleteMultipartUpload")
    async def complete_multipart(self, key: str, *, s3_upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the object from ``parts`` ((part_number, etag), ascending)."""
        sdk_parts = [Part(number, etag) for number, etag in parts]
        await asyncio.to_thread(
            self._client._complete_multipart_upload, self.bucket, key, s3_upload_id, sdk_parts
        )

    @_traced("AbortMultipartUpload")
    async def abort_multipart(self, key: str, *, s3_upload_id: str) -> None:
        """Abort a multipart upload and drop its parts; an already gone upload is not an error."""
        try:
            await asyncio.to_thread(self._client._abort_multipart_upload, self.bucket, key, s3_upload_id)
        except S3Error as exc:
            if not is_missing(exc):
                raise

    # --- plain objects -----------------------------------------------------------------------

    @_traced("PutObject")
    async def put(
        self, key: str, data: bytes | bytearray, *, content_type: str = "application/octet-stream"
    ) -> None:
        """Write a whole (small) object in one PUT (the SDK would split anything over 5 MiB into a multipart upload)."""
        await asyncio.to_thread(
            self._client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            part_size=max(len(data), _MIN_PART_SIZE),
        )

    @_traced("GetObject")
    async def read(self, key: str, *, length: int) -> bytes:
        """The first ``length`` bytes of an object (the object may be longer)."""
        if length == 0:
            return b""

        def read() -> bytes:
            response = self._client.get_object(self.bucket, key, offset=0, length=length)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        data = await asyncio.to_thread(read)
        if len(data) != length:
            raise RuntimeError(f"object {key} holds {len(data)} bytes, expected at least {length}")
        return data

    @_traced("HeadObject")
    async def size_of(self, key: str) -> int | None:
        """The object's size, or None if it does not exist."""
        try:
            stat = await asyncio.to_thread(self._client.stat_object, self.bucket, key)
        except S3Error as exc:
            if is_missing(exc):
                return None
            raise
        return stat.size

    @_traced("GetObject")
    async def sha256_of(self, key: str) -> str:
        """SHA-256 (hex) of an object, read back in 4 MiB blocks so that memory stays flat."""

        def digest() -> str:
            sha = hashlib.sha256()
            response = self._client.get_object(self.bucket, key)
            try:
                for block in response.stream(_READ_BLOCK):
                    sha.update(block)
            finally:
                response.close()
                response.release_conn()
            return sha.hexdigest()

        return await asyncio.to_thread(digest)

    @_traced("DeleteObject")
    async def delete(self, key: str) -> None:
        """Delete an object; a missing one is not an error."""
        try:
            await asyncio.to_thread(self._client.remove_object, self.bucket, key)
        except S3Error as exc:
            if not is_missing(exc):
                raise

    @_traced("DeleteObjects")
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many there were."""

        def delete_all() -> int:
            keys = [
                obj.object_name
                for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            ]
            if keys:
                errors = list(self._client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
                if errors:
                    raise RuntimeError(f"could not delete {len(errors)} objects under {prefix}: {errors[0]}")
            return len(keys)

        return await asyncio.to_thread(delete_all)

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (tests and clean-up checks)."""
        return await asyncio.to_thread(
            lambda: [
                o.object_name for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            ]
        )

    def presigned_get(self, key: str, *, ttl_seconds: int, filename: str | None = None) -> str:
        """A presigned GET URL valid for ``ttl_seconds`` (signing happens locally, no request)."""
        response_headers = None
        if filename:
            response_headers = {"response-content-disposition": content_disposition(filename)}
        return self._presign.presigned_get_object(
            self.bucket, key, expires=timedelta(seconds=ttl_seconds), response_headers=response_headers
        )


def build_object_store(settings: Settings) -> ObjectStore:
    """An ObjectStore for the files bucket in ``settings`` (large bodies unsigned unless ``s3_signed_payload``)."""
    client = s3_client(settings)
    if not settings.s3_signed_payload:
        client = UnsignedBodyMinio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    presign = None
    if settings.s3_public_endpoint:
        presign = Minio(
            settings.s3_public_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    return ObjectStore(client=client, bucket=settings.s3_bucket, presign_client=presign)
