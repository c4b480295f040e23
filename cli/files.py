"""`chat4all upload` / `chat4all download`: resumable file transfer with a progress bar.

The transfer functions take a plain gRPC channel and call metadata, so tests and the benchmark
use them too. An upload resumes by itself after a cut: it asks GetUploadStatus where the server
stopped and sends the rest from there; a download resumes with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import click
import grpc

from chat4all.retry import retry
from cli.client import Client, server_option
from cli.safe import shown, shown_markup

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 1024 * 1024
# Codes after which sending again from the server's bytes_received can succeed.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

Progress = Callable[[int], None]  # called with the absolute number of bytes sent/received


def sha256_file(path: Path, *, block: int = 4 * 1024 * 1024) -> str:
    """SHA-256 (lowercase hex) of a file, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(block):
            sha.update(data)
    return sha.hexdigest()


def upload_requests(
    info, source: BinaryIO, *, offset: int, size: int, chunk_bytes: int, progress: Progress | None
) -> Iterator:
    """The request stream: info, then chunks of ``source`` from ``offset``."""
    from chat4all.v1 import files_pb2

    yield files_pb2.UploadFileRequest(info=info)
    source.seek(offset)
    sent = offset
    while sent < size:
        data = source.read(min(chunk_bytes, size - sent))
        if not data:
            raise RuntimeError(f"file shrank while uploading: {sent} of {size} bytes")
        yield files_pb2.UploadFileRequest(chunk=data)
        sent += len(data)
        if progress is not None:
            progress(sent)


def server_offset(stub, upload_id: str, metadata, *, timeout: float = 15.0) -> int:
    """Bytes the server holds for ``upload_id`` (0 if it has no such session)."""
    from chat4all.v1 import files_pb2

    try:
        status = stub.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=upload_id), metadata=metadata, timeout=timeout
        )
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise
    return status.bytes_received


def upload_file(
    channel: grpc.Channel,
    metadata,  # gRPC call metadata
    *,
    path: Path,
    conversation_id: str,
    upload_id: str | None = None,
    mime_type: str | None = None,
    sha256: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_attempts: int = 20,
    progress: Progress | None = None,
    on_attempt: Callable[[int, int], None] | None = None,
):  # returns an UploadFileResponse
    """Upload ``path`` to a conversation, resuming after cuts (up to ``max_attempts`` streams).

    Returns the UploadFileResponse. Non-retryable errors (INVALID_ARGUMENT, PERMISSION_DENIED,
    DATA_LOSS, ...) are raised as grpc.RpcError.
    """
    from chat4all.v1 import files_pb2, files_pb2_grpc

    stub = files_pb2_grpc.FileServiceStub(channel)
    size = path.stat().st_size
    sha256 = sha256 or sha256_file(path)
    upload_id = upload_id or str(uuid.uuid4())
    mime_type = mime_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    def one_stream(attempt: int):  # returns an UploadFileResponse
        offset = server_offset(stub, upload_id, metadata)
        if on_attempt is not None:
            on_attempt(attempt, offset)
        if progress is not None:
            progress(offset)
        info = files_pb2.FileInfo(
            conversation_id=conversation_id,
            filename=path.name,
            mime_type=mime_type,
            size=size,
            sha256=sha256,
            upload_id=upload_id,
            offset=offset,
        )
        with open(path, "rb") as source:
            return stub.UploadFile(
                upload_requests(
                    info, source, offset=offset, size=size, chunk_bytes=chunk_bytes, progress=progress
                ),
                metadata=metadata,
            )

    def resumable(exc: Exception) -> bool:
        if not isinstance(exc, grpc.RpcError):
            return False
        if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
            return "expired" not in (exc.details() or "")  # our offset was stale: ask again
        return exc.code() in RETRYABLE

    def resuming(exc: Exception, attempt: int) -> None:
        logger.info(
            "upload %s attempt %d: %s: %s; resuming", upload_id, attempt, exc.code().name, exc.details()
        )  # type: ignore[attr-defined]

    return retry(
        one_stream,
        attempts=max_attempts,
        retryable=resumable,
        on_retry=resuming,
        delay=lambda _, attempt: min(0.5 * 2 ** (attempt - 1), 10.0),  # 0.5 s, doubling, at most 10 s
    )


def download_url(
    url: str,
    dest: Path,
    *,
    progress: Progress | None = None,
    max_attempts: int = 10,
    on_total: Callable[[int], None] | None = None,
) -> int:
    """GET a (presigned) URL into ``dest``, resuming with Range after a cut; returns the size."""
    import urllib3

    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=10, read=60))
    partial = dest.with_name(dest.name + ".part")

    def one_request(_: int) -> None:
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = http.request("GET", url, headers=headers, preload_content=False)
        try:
            if response.status == 416 and have:
                return  # nothing left to fetch
            if response.status not in (200, 206):
                body = response.read(2048).decode(errors="replace")
                raise click.ClickException(f"download refused: HTTP {response.status}: {body[:300]}")
            mode = "ab" if response.status == 206 else "wb"
            done = have if response.status == 206 else 0
            length = response.headers.get("Content-Length")
            if on_total is not None and length is not None:
                on_total(done + int(length))
            with open(partial, mode) as out:
                for block in response.stream(1024 * 1024):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done)
        finally:
            response.release_conn()

    retry(
        one_request,
        attempts=max_attempts,
        retryable=lambda exc: isinstance(exc, urllib3.exceptions.HTTPError | OSError),
        on_retry=lambda exc, attempt: logger.info("download attempt %d cut (%s); resuming", attempt, exc),
        delay=lambda _, attempt: min(0.5 * attempt, 5),
    )
    partial.replace(dest)
    return dest.stat().st_size


# --- commands ------------------------------------------------------------------------------


def _progress_bar(description: str, total: int | None):
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    task = bar.add_task(description, total=total)
    return bar, (lambda n: bar.update(task, completed=n))


@click.command("upload")
@click.argument("conversation_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--upload-id", default=None, help="Resume this upload (default: a new one, printed first).")
@click.option("--mime-type", default=None, help="MIME type (default: guessed from the name).")
@click.option("--chunk-mib", default=1.0, show_default=True, help="Chunk size in MiB (at most 4).")
@server_option
def upload(
    conversation_id: str,
    path: Path,
    upload_id: str | None,
    mime_type: str | None,
    chunk_mib: float,
    server: str | None,
) -> None:
    """Upload a file to a conversation; resumes by itself if the connection is cut."""
    if not 0 < chunk_mib <= 4:
        raise click.BadParameter("must be more than 0 and at most 4", param_hint="--chunk-mib")
    client = Client(server)
    upload_id = upload_id or str(uuid.uuid4())
    click.echo(f"upload id {upload_id} (resume with --upload-id)", err=True)
    channel, metadata = client.channel, client.md
    bar, progress = _progress_bar(shown_markup(path.name), path.stat().st_size)

    def attempt(n: int, offset: int) -> None:
        if n > 1:
            bar.console.print(f"resuming at byte {offset} (attempt {n})")

    try:
        with bar:
            result = upload_file(
                channel,
                metadata,
                path=path,
                conversation_id=conversation_id,
                upload_id=upload_id,
                mime_type=mime_type,
                chunk_bytes=int(chunk_mib * 1024 * 1024),
                progress=progress,
                on_attempt=attempt,
            )
    except grpc.RpcError as exc:
        raise click.ClickException(f"{exc.code().name}: {shown(exc.details())}") from None
    click.echo(f"file_id {result.file_id}  size {result.size}  sha256 {result.sha256}")


@click.command("download")
@click.argument("file_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: the uploaded file name, in this directory).",
)
@server_option
def download(file_id: str, output: Path | None, server: str | None) -> None:
    """Download a file through a presigned URL; resumes a cut transfer and checks the SHA-256."""
    from chat4all.v1 import files_pb2, files_pb2_grpc

    client = Client(server)
    channel, metadata = client.channel, client.md
    try:
        answer = files_pb2_grpc.FileServiceStub(channel).GetDownloadUrl(
            files_pb2.GetDownloadUrlRequest(file_id=file_id), metadata=metadata, timeout=15
        )
    except grpc.RpcError as exc:
        raise click.ClickException(f"{exc.code().name}: {shown(exc.details())}") from None
    output = output or Path(filename_from_url(answer.url) or file_id)
    # The name is the uploader's: rich would read [style] markup in it.
    bar, progress = _progress_bar(shown_markup(output.name), None)
    with bar:
        size = download_url(
            answer.url,
            output,
            progress=progress,
            on_total=lambda total: bar.update(bar.task_ids[0], total=total),
        )
    digest = sha256_file(output)
    click.echo(f"{shown(output)}  {size} bytes  sha256 {digest}")


def filename_from_url(url: str) -> str | None:
    """The file name a presigned URL asks S3 to put in Content-Disposition, if any (base name only)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    values = parse_qs(urlsplit(url).query).get("response-content-disposition")
    if not values:
        return None
    value = values[0]
    if "filename*=UTF-8''" in value:
        name = unquote(value.split("filename*=UTF-8''", 1)[1].split(";", 1)[0])
    elif 'filename="' in value:
        name = value.split('filename="', 1)[1].split('"', 1)[0]
    else:
        return None
    return Path(name).name or None
