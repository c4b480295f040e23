"""Pure checks without servers: FileInfo validation, error mapping, the CLI's file name from a URL."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlencode

import grpc
import pytest
from google.protobuf.message import DecodeError

from api.files.errors import ChecksumMismatch, InvalidUpload, SessionConflict, UploadIncomplete
from api.files.handlers import ChunkRequest, add_file_service, parse_upload_request
from api.files.uploader import Uploader
from api.files.validation import UploadRequest
from api.services.files import api_error as _api_error
from chat4all.objectstore import content_disposition
from chat4all.v1 import files_pb2, files_pb2_grpc
from cli.files import filename_from_url

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


def test_part_size_below_s3_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        Uploader(
            sessions=None,
            records=None,
            objects=None,
            max_file_bytes=1,
            part_bytes=4 * 1024**2,  # type: ignore[arg-type]
            max_chunk_bytes=1,
            session_ttl_seconds=1,
        )


def test_errors_map_to_status_codes() -> None:
    assert _api_error(ChecksumMismatch("x")).code == grpc.StatusCode.DATA_LOSS
    incomplete = _api_error(UploadIncomplete("ended early", bytes_received=42))
    assert incomplete.code == grpc.StatusCode.ABORTED and incomplete.trailers == (("bytes-received", "42"),)
    assert _api_error(SessionConflict("u")).code == grpc.StatusCode.ABORTED


def test_download_name_comes_from_the_url_without_directories() -> None:
    url = "http://s3/b/k?response-content-disposition=attachment%3B%20filename%3D%22..%2F..%2Fevil.sh%22&X-Amz-Expires=5"
    assert filename_from_url(url) == "evil.sh"
    assert filename_from_url("http://s3/b/k?X-Amz-Expires=5") is None


def test_non_ascii_names_survive_the_round_trip() -> None:
    header = content_disposition('relatório "final".pdf')
    assert header.isascii() and 'filename="relat_rio final.pdf"' in header
    url = "http://s3/b/k?" + urlencode({"response-content-disposition": header})
    assert filename_from_url(url) == 'relatório "final".pdf'


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 1024**2, 4 * 1024**2 + 3])
def test_a_chunk_message_is_parsed_as_protobuf_would_but_without_a_copy(size: int) -> None:
    data = os.urandom(size)
    wire = files_pb2.UploadFileRequest(chunk=data).SerializeToString()
    got = parse_upload_request(wire)
    assert isinstance(got, ChunkRequest) and got.WhichOneof("payload") == "chunk"
    assert bytes(got.chunk) == files_pb2.UploadFileRequest.FromString(wire).chunk == data
    assert got.chunk.obj is wire  # a view into gRPC's message


def test_any_other_message_is_parsed_by_protobuf() -> None:
    chunk = files_pb2.UploadFileRequest(chunk=b"abc").SerializeToString()
    info = files_pb2.UploadFileRequest(
        info=files_pb2.FileInfo(upload_id="u-1", size=3, offset=0)
    ).SerializeToString()
    for wire in (info, b"", chunk + b"\x18\x01", chunk + chunk, info + chunk, chunk + info):
        got = parse_upload_request(wire)
        assert isinstance(got, files_pb2.UploadFileRequest)
        assert got == files_pb2.UploadFileRequest.FromString(wire)
    for broken in (chunk[:-1], b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"):
        with pytest.raises(DecodeError):
            files_pb2.UploadFileRequest.FromString(broken)
        with pytest.raises(DecodeError):
            parse_upload_request(broken)


def test_the_file_service_registers_every_rpc_of_its_proto() -> None:
    class Server:
        def add_generic_rpc_handlers(self, handlers) -> None:
            self.generic = handlers

        def add_registered_method_handlers(self, name: str, handlers: dict) -> None:
            self.name, self.handlers = name, handlers

    server = Server()
    add_file_service(files_pb2_grpc.FileServiceServicer(), server)  # type: ignore[arg-type]
    service = files_pb2.DESCRIPTOR.services_by_name["FileService"]
    assert server.name == service.full_name and set(server.handlers) == {m.name for m in service.methods}
    assert (
        server.handlers["UploadFile"].request_streaming
        and server.handlers["UploadFile"].request_deserializer is parse_upload_request
    )
    assert (
        server.handlers["GetUploadStatus"].request_deserializer == files_pb2.GetUploadStatusRequest.FromString
    )
