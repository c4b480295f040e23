"""FileService's gRPC method handlers, with UploadFile's chunk messages parsed without a copy."""

from __future__ import annotations

import grpc

from chat4all.v1 import files_pb2, files_pb2_grpc


class ChunkRequest:
    """An UploadFileRequest that holds only a chunk, as ``parse_upload_request`` returns it.

    ``chunk`` is a view into the message gRPC received, not a copy.
    """

    __slots__ = ("chunk",)

    def __init__(self, chunk: memoryview) -> None:
        self.chunk = chunk

    def WhichOneof(self, oneof_group: str) -> str | None:  # protobuf's name
        """``chunk`` for the ``payload`` oneof, None for any other (protobuf's method, for the servicer)."""
        return "chunk" if oneof_group == "payload" else None

    def HasField(self, field_name: str) -> bool:  # protobuf's name
        """True for ``chunk`` and ``payload`` (protobuf's method, for the servicer)."""
        return field_name in ("chunk", "payload")


_CHUNK_TAG = 0x12  # field 2 (chunk), wire type 2 (length-delimited)


def parse_upload_request(data: bytes) -> files_pb2.UploadFileRequest | ChunkRequest:
    """``UploadFileRequest.FromString``, except that a message of one chunk field becomes a ChunkRequest.

    Every message after the first is one chunk field and nothing else: its ChunkRequest views ``data``.
    The protobuf parser would copy each chunk twice (into its arena, then into a new bytes object
    when the field is read); at 1 MiB a message that was a third of the API's CPU per uploaded
    byte, with the allocations. Anything else (info, unknown fields, a repeated field) goes to
    protobuf, so the result is what protobuf would give.
    """
    if len(data) > 1 and data[0] == _CHUNK_TAG:
        length, shift, pos = 0, 0, 1
        while pos < len(data) and shift < 64:
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                if pos + length == len(data):
                    return ChunkRequest(memoryview(data)[pos:])
                break
            shift += 7
    return files_pb2.UploadFileRequest.FromString(data)


def add_file_service(servicer: files_pb2_grpc.FileServiceServicer, server: grpc.aio.Server) -> None:
    """``add_FileServiceServicer_to_server``, except that ``parse_upload_request`` parses UploadFile's.

    Built from the service descriptor the same way as the function ``files_pb2_grpc`` generates.
    """
    service = files_pb2.DESCRIPTOR.services_by_name["FileService"]
    makers = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    handlers = {}
    for method in service.methods:
        request, response = (
            getattr(files_pb2, method.input_type.name),
            getattr(files_pb2, method.output_type.name),
        )
        handlers[method.name] = makers[method.client_streaming, method.server_streaming](
            getattr(servicer, method.name),
            request_deserializer=parse_upload_request if method.name == "UploadFile" else request.FromString,
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
