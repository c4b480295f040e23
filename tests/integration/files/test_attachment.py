"""A message with an attachment: the file's metadata comes back with it in GetMessages (through the pipeline)."""

from __future__ import annotations

import hashlib
import time

import grpc
import pytest

from chat4all.v1 import files_pb2, messages_pb2
from tests.integration.files.conftest import make_room
from tests.integration.files.helpers import info_for, status_code

pytestmark = pytest.mark.integration


def test_message_with_attachment_shows_it_in_history(api, files, pipeline_worker) -> None:
    room = make_room(api)  # a conversation of its own: its history holds only this test's messages
    data = b"%PDF-1.7 pretend" * 5000
    info = info_for(room, data, filename="report.pdf", mime_type="application/pdf")
    done = files.UploadFile(
        iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data)]),
        metadata=room.alice.md,
        timeout=30,
    )

    sent = api.messages.SendMessage(
        messages_pb2.SendMessageRequest(
            conversation_id=room.conversation_id, content="the report", file_id=done.file_id
        ),
        metadata=room.alice.md,
        timeout=15,
    )
    deadline = time.monotonic() + 30
    found = None
    while found is None and time.monotonic() < deadline:
        page = api.messages.GetMessages(
            messages_pb2.GetMessagesRequest(conversation_id=room.conversation_id),
            metadata=room.bob.md,
            timeout=10,
        )
        found = next((m for m in page.messages if m.message_id == sent.message_id), None)
        if found is None:
            time.sleep(0.3)
    assert found is not None, "the message never reached the history"
    assert found.file_id == done.file_id
    assert found.file.file_id == done.file_id
    assert found.file.filename == "report.pdf" and found.file.mime_type == "application/pdf"
    assert found.file.size == len(data) and found.file.sha256 == hashlib.sha256(data).hexdigest()
    assert found.file.created_at.seconds > 0

    # A file of another conversation cannot be attached here.
    other = make_room(api)
    with pytest.raises(grpc.RpcError) as exc:
        api.messages.SendMessage(
            messages_pb2.SendMessageRequest(
                conversation_id=other.conversation_id, content="x", file_id=done.file_id
            ),
            metadata=other.alice.md,
            timeout=15,
        )
    assert status_code(exc) == grpc.StatusCode.PERMISSION_DENIED
