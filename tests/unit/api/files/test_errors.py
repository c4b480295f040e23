"""The files errors' gRPC status codes."""

from __future__ import annotations

import grpc

from api.files.errors import ChecksumMismatch, SessionConflict, UploadIncomplete
from api.services.files import api_error as _api_error


def test_errors_map_to_status_codes() -> None:
    assert _api_error(ChecksumMismatch("x")).code == grpc.StatusCode.DATA_LOSS
    incomplete = _api_error(UploadIncomplete("ended early", bytes_received=42))
    assert incomplete.code == grpc.StatusCode.ABORTED and incomplete.trailers == (("bytes-received", "42"),)
    assert _api_error(SessionConflict("u")).code == grpc.StatusCode.ABORTED
