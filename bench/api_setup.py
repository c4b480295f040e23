"""Benchmark set-up for bench/api_bench.sh: a user, a peer and a conversation on a running API.

Prints shell assignments: TOKEN=... CONVERSATION_ID=...
"""

from __future__ import annotations

import sys
import uuid

import grpc

from chat4all.v1 import auth_pb2, auth_pb2_grpc, conversations_pb2, conversations_pb2_grpc


def main(target: str) -> None:
    channel = grpc.insecure_channel(target)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    conversations = conversations_pb2_grpc.ConversationServiceStub(channel)
    users = []
    for name in ("bench-sender", "bench-peer"):
        username, password = f"{name}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        auth.Register(auth_pb2.RegisterRequest(username=username, password=password), timeout=15)
        users.append(auth.Login(auth_pb2.LoginRequest(username=username, password=password), timeout=15))
    sender, peer = users
    created = conversations.CreateConversation(
        conversations_pb2.CreateConversationRequest(
            type=conversations_pb2.CONVERSATION_TYPE_PRIVATE, participant_ids=[peer.user_id]
        ),
        metadata=(("authorization", f"Bearer {sender.access_token}"),),
        timeout=15,
    )
    print(f"TOKEN={sender.access_token}")
    print(f"CONVERSATION_ID={created.conversation_id}")


if __name__ == "__main__":
    main(sys.argv[1])
