"""Fixtures for FileService tests: users in a conversation, an outsider, direct S3 and Cassandra access."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cassandra.cluster import Session
from minio import Minio

from chat4all.cassandra import connect
from chat4all.s3 import s3_client
from chat4all.settings import Settings
from chat4all.v1 import conversations_pb2, files_pb2, files_pb2_grpc
from tests.fixtures.api import ApiClient, TestUser

MiB = 1024 * 1024


@dataclass(kw_only=True)
class Room:
    """Two participants of a private conversation (alice uploads) and an outsider."""

    alice: TestUser
    bob: TestUser
    eve: TestUser
    conversation_id: str


def make_room(api: ApiClient) -> Room:
    alice, bob, eve = (api.register_and_login(p) for p in ("alice", "bob", "eve"))
    created = api.conversations.CreateConversation(
        conversations_pb2.CreateConversationRequest(
            type=conversations_pb2.CONVERSATION_TYPE_PRIVATE, participant_ids=[bob.user_id]
        ),
        metadata=alice.md,
        timeout=15,
    )
    return Room(alice=alice, bob=bob, eve=eve, conversation_id=created.conversation_id)


@pytest.fixture(scope="session")
def room(api: ApiClient) -> Room:
    return make_room(api)


@pytest.fixture(scope="session")
def files(api: ApiClient) -> files_pb2_grpc.FileServiceStub:
    return api.stub(files_pb2_grpc.FileServiceStub)


@pytest.fixture(scope="session")
def cql(settings: Settings) -> Iterator[Session]:
    session = connect(settings)
    yield session
    session.cluster.shutdown()


@pytest.fixture(scope="session")
def s3(settings: Settings) -> Minio:
    return s3_client(settings)


def write_random(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            f.write(block)
            left -= len(block)
    return path


class CutStream:
    """A request stream that sends info and chunks up to ``cut_at`` bytes, then holds until released.

    Lets a test cancel the call (a cut connection) at a known point, or end the stream early.
    """

    def __init__(self, info: files_pb2.FileInfo, data: bytes, *, start: int = 0, cut_at: int, chunk: int = MiB,
                 hold: bool = True) -> None:
        self.info, self.data, self.start, self.cut_at, self.chunk, self.hold = info, data, start, cut_at, chunk, hold
        self.sent = start
        self.reached = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[files_pb2.UploadFileRequest]:
        yield files_pb2.UploadFileRequest(info=self.info)
        while self.sent < self.cut_at:
            end = min(self.sent + self.chunk, self.cut_at)
            yield files_pb2.UploadFileRequest(chunk=self.data[self.sent:end])
            self.sent = end
        self.reached.set()
        if self.hold:
            self.release.wait(60)


def cut_upload(files: files_pb2_grpc.FileServiceStub, md, info: files_pb2.FileInfo, data: bytes, *,  # noqa: ANN001
               cut_at: int, start: int = 0, settle: float = 1.0) -> None:
    """Send bytes up to ``cut_at``, then cancel the call as a dropped connection would."""
    import time

    stream = CutStream(info, data, start=start, cut_at=cut_at)
    future = files.UploadFile.future(iter(stream), metadata=md)
    assert stream.reached.wait(60), "the stream never reached the cut"
    time.sleep(settle)  # let the server read what is in flight
    future.cancel()
    stream.release.set()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()


def status_code(exc_info: pytest.ExceptionInfo) -> grpc.StatusCode:
    return exc_info.value.code()
