"""Benchmark set-up for bench/api_bench.sh and bench/overload.py: senders, a peer and one conversation per sender.

    api_setup.py HOST:PORT                       # one sender; prints TOKEN=... CONVERSATION_ID=...
    api_setup.py HOST:PORT --users 200 --out F   # 200 senders; F gets one '<token> <conversation_id>' line each

Senders are registered through the API, each with a PRIVATE conversation with one peer. Register
hashes a password with argon2 (64 MiB, about 0.2 s of this machine's CPU), so the senders are kept
in a cache file (``--cache``, default ``<stack_dir>/bench/api-users.json``) and reused by later runs;
their tokens are minted with the API's own ``TokenService`` and ``CHAT4ALL_JWT_SECRET`` (the
benchmark sets the secret of the API it starts), instead of one more argon2 Login per sender.
A cache whose first conversation the API does not know (a wiped stack) is rebuilt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from api.tokens import TokenService
from chat4all.settings import get_settings
from chat4all.v1 import auth_pb2, auth_pb2_grpc, conversations_pb2, conversations_pb2_grpc


class Setup:
    def __init__(self, target: str, tokens: TokenService) -> None:
        channel = grpc.insecure_channel(target)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.conversations = conversations_pb2_grpc.ConversationServiceStub(channel)
        self.tokens = tokens

    def md(self, user_id: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens.issue(user_id)[0]}"),)

    def register(self, name: str, channels: dict[str, str] | None = None) -> str:
        username, password = f"{name}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        request = auth_pb2.RegisterRequest(username=username, password=password, channels=channels or {})
        return self.auth.Register(request, timeout=120).user_id

    def sender(self, peer_id: str, i: int) -> dict[str, str]:
        user_id = self.register(f"bench-sender{i}")
        created = self.conversations.CreateConversation(
            conversations_pb2.CreateConversationRequest(
                type=conversations_pb2.CONVERSATION_TYPE_PRIVATE, participant_ids=[peer_id]
            ),
            metadata=self.md(user_id),
            timeout=60,
        )
        return {"user_id": user_id, "conversation_id": created.conversation_id}

    def still_there(self, cached: dict) -> bool:
        first = cached["senders"][0]
        try:
            self.conversations.GetConversation(
                conversations_pb2.GetConversationRequest(conversation_id=first["conversation_id"]),
                metadata=self.md(first["user_id"]),
                timeout=10,
            )
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                return False
            raise
        return True


def senders(
    target: str, *, users: int, secret: str, whatsapp_peer: bool = False, cache: Path | None = None
) -> list[tuple[str, str]]:
    """``users`` (token, conversation_id) pairs, registering only what the cache lacks.

    ``whatsapp_peer``: the peer has a WhatsApp handle, so the simulated connector delivers every
    message (DELIVERED, then READ) without a client of the peer online.
    """
    settings = get_settings()
    tokens = TokenService(
        secret=secret, issuer=settings.jwt_issuer, ttl_seconds=settings.jwt_ttl_seconds, redis=None
    )
    setup = Setup(target, tokens)
    name = "api-users-whatsapp.json" if whatsapp_peer else "api-users.json"
    cache_path = cache or Path(settings.stack_dir) / "bench" / name
    cached = json.loads(cache_path.read_text()) if cache_path.exists() else None
    if cached and cached["senders"] and not setup.still_there(cached):
        cached = None
    if not cached:
        channels = {"whatsapp": "+5511900000000"} if whatsapp_peer else None
        cached = {"peer_id": setup.register("bench-peer", channels), "senders": []}
    missing = range(len(cached["senders"]), users)
    if missing:
        # A few at a time: the API hashes passwords on its thread pool.
        with ThreadPoolExecutor(max_workers=4) as pool:
            cached["senders"] += list(pool.map(lambda i: setup.sender(cached["peer_id"], i), missing))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached))
        tmp.replace(cache_path)
    return [(tokens.issue(s["user_id"])[0], s["conversation_id"]) for s in cached["senders"][:users]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--users", type=int, default=1, help="number of senders (default 1)")
    parser.add_argument("--out", help="write '<token> <conversation_id>' lines here")
    parser.add_argument(
        "--cache", type=Path, help="senders kept between runs (default <stack_dir>/bench/api-users.json)"
    )
    parser.add_argument(
        "--whatsapp-peer", action="store_true", help="the peer has a WhatsApp handle (own cache file)"
    )
    args = parser.parse_args()

    settings = get_settings()
    if settings.jwt_secret is None:
        sys.exit(
            "CHAT4ALL_JWT_SECRET must be the secret of the API under test (the benchmark scripts set it)"
        )
    pairs = senders(
        args.target,
        users=args.users,
        secret=settings.jwt_secret.get_secret_value(),
        whatsapp_peer=args.whatsapp_peer,
        cache=args.cache,
    )
    if args.out:
        with open(args.out, "w") as f:
            f.writelines(f"{token} {conversation_id}\n" for token, conversation_id in pairs)
    token, conversation_id = pairs[0]
    print(f"TOKEN={token}")
    print(f"CONVERSATION_ID={conversation_id}")


if __name__ == "__main__":
    main()
