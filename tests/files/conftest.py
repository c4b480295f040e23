"""Fixtures for FileService tests: users in a conversation, an outsider, direct S3 and Cassandra access."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cassandra.cluster import Session
from minio import Minio

from chat4all.cassandra import connect
from chat4all.s3 import s3_client
from chat4all.settings import Settings
from chat4all.v1 import conversations_pb2, files_pb2_grpc
from tests.fixtures.api import ApiClient, TestUser


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
