"""The file service's handlers: chunk messages parsed without a copy, every RPC of the proto registered."""

from __future__ import annotations

import os

import pytest
from google.protobuf.message import DecodeError

from api.files.handlers import ChunkRequest, add_file_service, parse_upload_request
from chat4all.v1 import files_pb2, files_pb2_grpc


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
