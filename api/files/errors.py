"""The files package's errors, each with the gRPC status it answers with, and the S3 outages."""

from __future__ import annotations

from typing import ClassVar

import grpc
import urllib3
from minio.error import ServerError

# S3 not answering (connection refused, timeouts, 5xx after the SDK's retries): the client
# should resume later, so UNAVAILABLE rather than INTERNAL.
S3_OUTAGE: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, ServerError)


class FileError(Exception):
    """An error of the files package; ``code`` is its gRPC status (the servicer answers with it)."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(
        self, message: str, *, bytes_received: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.bytes_received = bytes_received
        self.retry_after = retry_after  # seconds, for RESOURCE_EXHAUSTED

    @property
    def trailers(self) -> tuple[tuple[str, str], ...]:
        """``bytes-received`` and ``retry-after``, for those of them the error carries."""
        trailers: tuple[tuple[str, str], ...] = ()
        if self.bytes_received is not None:
            trailers += (("bytes-received", str(self.bytes_received)),)
        if self.retry_after is not None:
            trailers += (("retry-after", f"{self.retry_after:.3f}"),)
        return trailers


class SessionConflict(FileError):
    """A conditional write lost: another stream changed the upload session first."""

    code = grpc.StatusCode.ABORTED

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"another stream is writing upload {upload_id}; check GetUploadStatus and resume")
        self.upload_id = upload_id


class UploadError(FileError):
    """An upload refused."""


class InvalidUpload(UploadError):
    """A FileInfo or a chunk that cannot be uploaded."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class TooManyBytes(InvalidUpload):
    """More bytes than the declared size: the file cannot be the declared one."""


class ChecksumMismatch(UploadError):
    """The received bytes do not hash to the declared SHA-256: the upload is discarded."""

    code = grpc.StatusCode.DATA_LOSS


class UploadIncomplete(UploadError):
    """The stream ended before the declared size: the bytes are kept, resume later."""

    code = grpc.StatusCode.ABORTED


class UploadBusy(UploadError):
    """Another stream holds or took over the upload."""

    code = grpc.StatusCode.ABORTED


class OffsetMismatch(UploadError):
    """The client resumes from another offset than the server's ``bytes_received``."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionExpired(UploadError):
    """The session expired: start again with a new upload_id."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionNotFound(UploadError):
    """The caller has no live session of that upload_id."""

    code = grpc.StatusCode.NOT_FOUND


class TooManyStreams(UploadError):
    """The process's or the user's stream slots are taken, or the user holds too many open sessions."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class StreamIdle(UploadError):
    """The client sent nothing for ``idle_seconds``: the stream is closed, its bytes kept."""

    code = grpc.StatusCode.ABORTED
