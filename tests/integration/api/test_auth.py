"""AuthService and UserService on a real API server: accounts, tokens (expiry, revocation), channels."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import grpc
import jwt
import pytest

from chat4all.v1 import auth_pb2, users_pb2
from cli.harness.api_client import ApiClient, expect_status
from cli.harness.api_process import TEST_JWT_SECRET, chat4all_executable
from cli.harness.ports import free_port

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode


def test_register_login_getme(api: ApiClient) -> None:
    user = api.register_and_login("alice", channels={"whatsapp": "+5511999990000"})
    me = api.users.GetMe(users_pb2.GetMeRequest(), metadata=user.md, timeout=10)
    assert me.user_id == user.user_id
    assert me.username == user.username
    assert dict(me.channels) == {"whatsapp": "+5511999990000"}
    claims = jwt.decode(user.token, TEST_JWT_SECRET, algorithms=["HS256"], issuer="chat4all")
    assert claims["sub"] == user.user_id and claims["jti"] and claims["exp"] > time.time()


def test_login_expiry_is_in_the_response(api: ApiClient) -> None:
    user = api.register_and_login("exp")
    reply = api.auth.Login(auth_pb2.LoginRequest(username=user.username, password=user.password), timeout=10)
    assert abs(reply.expires_at.seconds - (time.time() + 3600)) < 30


def test_duplicate_username_is_already_exists(api: ApiClient) -> None:
    user = api.register_and_login("dup")
    err = expect_status(
        CODE.ALREADY_EXISTS,
        api.auth.Register,
        auth_pb2.RegisterRequest(username=user.username, password="another-pass"),
        timeout=10,
    )
    assert user.username in err.details()
    # The first account is untouched: its password still works.
    api.auth.Login(auth_pb2.LoginRequest(username=user.username, password=user.password), timeout=10)


@pytest.mark.parametrize(
    ("username", "password", "channels", "text"),
    [
        ("ab", "long-enough", {}, "username"),
        ("Upper-Case", "long-enough", {}, "username"),
        (f"ok-{uuid.uuid4().hex[:8]}", "short", {}, "password"),
        (f"ok-{uuid.uuid4().hex[:8]}", "long-enough", {"telegram": "x"}, "channel"),
        (f"ok-{uuid.uuid4().hex[:8]}", "long-enough", {"whatsapp": ""}, "handle"),
    ],
)
def test_register_rejects_bad_input(
    api: ApiClient, username: str, password: str, channels: dict, text: str
) -> None:
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.auth.Register,
        auth_pb2.RegisterRequest(username=username, password=password, channels=channels),
        timeout=10,
    )
    assert text in err.details()


def test_wrong_password_and_unknown_user_are_unauthenticated(api: ApiClient) -> None:
    user = api.register_and_login("pw")
    wrong = expect_status(
        CODE.UNAUTHENTICATED,
        api.auth.Login,
        auth_pb2.LoginRequest(username=user.username, password="not-the-password"),
        timeout=10,
    )
    unknown = expect_status(
        CODE.UNAUTHENTICATED,
        api.auth.Login,
        auth_pb2.LoginRequest(username="nobody-" + uuid.uuid4().hex[:8], password="whatever1"),
        timeout=10,
    )
    assert wrong.details() == unknown.details() == "wrong username or password"


def test_missing_malformed_and_forged_tokens_are_unauthenticated(api: ApiClient) -> None:
    user = api.register_and_login("tok")
    get_me = api.users.GetMe
    req = users_pb2.GetMeRequest()
    assert "missing access token" in expect_status(CODE.UNAUTHENTICATED, get_me, req, timeout=10).details()
    expect_status(CODE.UNAUTHENTICATED, get_me, req, metadata=(("authorization", user.token),), timeout=10)
    expect_status(
        CODE.UNAUTHENTICATED, get_me, req, metadata=(("authorization", "Bearer not.a.jwt"),), timeout=10
    )
    now = int(time.time())
    claims = {"sub": user.user_id, "iss": "chat4all", "iat": now, "exp": now + 600, "jti": "x"}
    forged = jwt.encode(claims, "some-other-secret-of-sufficient-length!!", algorithm="HS256")
    err = expect_status(
        CODE.UNAUTHENTICATED, get_me, req, metadata=(("authorization", f"Bearer {forged}"),), timeout=10
    )
    assert err.details() == "access token is invalid"
    wrong_issuer = jwt.encode({**claims, "iss": "evil"}, TEST_JWT_SECRET, algorithm="HS256")
    expect_status(
        CODE.UNAUTHENTICATED, get_me, req, metadata=(("authorization", f"Bearer {wrong_issuer}"),), timeout=10
    )
    no_jti = jwt.encode({k: v for k, v in claims.items() if k != "jti"}, TEST_JWT_SECRET, algorithm="HS256")
    expect_status(
        CODE.UNAUTHENTICATED, get_me, req, metadata=(("authorization", f"Bearer {no_jti}"),), timeout=10
    )


def test_revoked_token_stops_working_at_once(api: ApiClient) -> None:
    user = api.register_and_login("rev")
    api.users.GetMe(users_pb2.GetMeRequest(), metadata=user.md, timeout=10)
    api.auth.RevokeToken(auth_pb2.RevokeTokenRequest(), metadata=user.md, timeout=10)
    err = expect_status(
        CODE.UNAUTHENTICATED, api.users.GetMe, users_pb2.GetMeRequest(), metadata=user.md, timeout=10
    )
    assert "revoked" in err.details()
    # A new login gives a new, working token.
    fresh = api.auth.Login(auth_pb2.LoginRequest(username=user.username, password=user.password), timeout=10)
    api.users.GetMe(
        users_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {fresh.access_token}"),), timeout=10
    )


def test_expired_token_is_unauthenticated(api_factory) -> None:
    short = api_factory({"CHAT4ALL_JWT_TTL_SECONDS": "2"})
    user = short.register_and_login("ttl")
    short.users.GetMe(users_pb2.GetMeRequest(), metadata=user.md, timeout=10)
    time.sleep(3.1)
    err = expect_status(
        CODE.UNAUTHENTICATED, short.users.GetMe, users_pb2.GetMeRequest(), metadata=user.md, timeout=10
    )
    assert "expired" in err.details()


def test_link_and_unlink_channels(api: ApiClient) -> None:
    user = api.register_and_login("link")
    linked = api.users.LinkChannel(
        users_pb2.LinkChannelRequest(channel="instagram", handle="@me"), metadata=user.md, timeout=10
    )
    assert dict(linked.channels) == {"instagram": "@me"}
    linked = api.users.LinkChannel(
        users_pb2.LinkChannelRequest(channel="whatsapp", handle="+55"), metadata=user.md, timeout=10
    )
    assert dict(linked.channels) == {"instagram": "@me", "whatsapp": "+55"}
    left = api.users.UnlinkChannel(
        users_pb2.UnlinkChannelRequest(channel="instagram"), metadata=user.md, timeout=10
    )
    assert dict(left.channels) == {"whatsapp": "+55"}
    me = api.users.GetMe(users_pb2.GetMeRequest(), metadata=user.md, timeout=10)
    assert dict(me.channels) == {"whatsapp": "+55"}
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.users.LinkChannel,
        users_pb2.LinkChannelRequest(channel="native", handle="x"),
        metadata=user.md,
        timeout=10,
    )
    assert "whatsapp, instagram" in err.details()


def test_server_refuses_to_start_without_secret_outside_dev_mode(tmp_path) -> None:
    env = {
        **os.environ,
        "CHAT4ALL_DEV_MODE": "false",
        "CHAT4ALL_JWT_SECRET": "",
        "CHAT4ALL_API_PORT": str(free_port()),
        "CHAT4ALL_API_METRICS_PORT": str(free_port()),
        "CHAT4ALL_STACK_DIR": str(tmp_path),
    }
    done = subprocess.run([chat4all_executable(), "api"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "CHAT4ALL_JWT_SECRET is not set" in done.stderr
    short = subprocess.run(
        [chat4all_executable(), "api"],
        env={**env, "CHAT4ALL_JWT_SECRET": "short"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert short.returncode != 0 and "shorter than 32 bytes" in short.stderr
