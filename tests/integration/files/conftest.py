"""Fixtures for FileService tests: users in a conversation, an outsider, direct S3 and Cassandra access."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from minio import Minio

from chat4all.s3 import s3_client
from chat4all.settings import Settings
from chat4all.v1 import files_pb2_grpc
from cli.harness.api_client import ApiClient, TestUser


@dataclass(kw_only=True)
class Room:
    """Two participants of a private conversation (alice uploads) and an outsider."""

    alice: TestUser
    bob: TestUser
    eve: TestUser
    conversation_id: str


def make_room(api: ApiClient) -> Room:
    alice, bob, eve = (api.register_and_login(p) for p in ("alice", "bob", "eve"))
    return Room(
        alice=alice, bob=bob, eve=eve, conversation_id=api.private_conversation(alice, bob, timeout=15)
    )


@pytest.fixture(scope="session")
def room(api: ApiClient) -> Room:
    return make_room(api)


@pytest.fixture(scope="session")
def files(api: ApiClient) -> files_pb2_grpc.FileServiceStub:
    return api.stub(files_pb2_grpc.FileServiceStub)


@pytest.fixture(scope="session")
def s3(settings: Settings) -> Minio:
    return s3_client(settings)
