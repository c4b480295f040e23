"""Pure unit tests of the API's building blocks: cursors, page sizes, tokens, passwords, ids, CLI session file."""

from __future__ import annotations

import asyncio
import os
import stat
import time
import uuid

import grpc
import jwt
import pytest

from api.convert import parse_uuid
from api.errors import ApiError
from api.pagination import Cursors, cursor_key, cursor_ms, cursor_uuid, page_size
from api.passwords import PasswordHasherPool
from api.tokens import MissingSecret, TokenService, resolve_secret
from chat4all.settings import Settings
from tests.api.fakes import FakeRedis


def code_of(exc: pytest.ExceptionInfo) -> grpc.StatusCode:
    assert isinstance(exc.value, ApiError)
    return exc.value.code


def test_page_size_default_bounds_and_rejection() -> None:
    assert page_size(0) == 50
    assert page_size(1) == 1 and page_size(500) == 500
    for bad in (-1, 501, 10_000):
        with pytest.raises(ApiError) as exc:
            page_size(bad)
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_cursor_round_trip_and_kind_check() -> None:
    cursors = Cursors(key=b"k" * 32)
    token = cursors.encode("messages", {"ts": 1700000000123, "id": "abc"})
    assert cursors.decode("messages", token) == {"k": "messages", "ts": 1700000000123, "id": "abc"}
    assert cursors.decode("messages", "") is None
    other_key = Cursors(key=b"x" * 32).encode("messages", {"ts": 1, "id": "abc"})
    for bad_kind, bad_token in (
        ("conversations", token),
        ("messages", "%%%"),
        ("messages", "bm90LWpzb24"),
        ("messages", other_key),
        ("messages", token[:-2]),
        ("messages", token.split(".")[0]),
    ):
        with pytest.raises(ApiError) as exc:
            cursors.decode(bad_kind, bad_token)
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_cursor_key_is_derived_from_the_jwt_secret_unless_set() -> None:
    derived = cursor_key(settings=Settings(), jwt_secret="j" * 40)
    assert (
        derived
        == cursor_key(settings=Settings(), jwt_secret="j" * 40)
        != cursor_key(settings=Settings(), jwt_secret="i" * 40)
    )
    assert b"j" * 40 not in derived
    assert cursor_key(settings=Settings(api_cursor_secret="c" * 32), jwt_secret="j" * 40) == b"c" * 32
    with pytest.raises(MissingSecret):
        cursor_key(settings=Settings(api_cursor_secret="short"), jwt_secret="j" * 40)


def test_cursor_fields_are_type_and_range_checked() -> None:
    good = {"ts": 1700000000123, "id": str(uuid.uuid4())}
    assert cursor_ms(good, "ts") == 1700000000123 and str(cursor_uuid(good, "id")) == good["id"]
    for bad in ({"ts": 1e30}, {"ts": True}, {"ts": -1}, {"ts": 10**20}, {"ts": "1"}, {}, {"ts": [[1]]}):
        with pytest.raises(ApiError) as exc:
            cursor_ms(bad, "ts")
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
    for bad in ({"id": 7}, {"id": "nope"}, {"id": None}, {"id": "{" + good["id"] + "}"}, {}):
        with pytest.raises(ApiError) as exc:
            cursor_uuid(bad, "id")
        assert code_of(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_parse_uuid_names_the_field() -> None:
    value = uuid.uuid4()
    assert parse_uuid(str(value), "x") == value
    with pytest.raises(ApiError, match="conversation_id is not a valid UUID"):
        parse_uuid("nope", "conversation_id")
    with pytest.raises(ApiError, match="file_id is required"):
        parse_uuid("", "file_id")


async def test_tokens_issue_verify_revoke() -> None:
    redis = FakeRedis()
    tokens = TokenService(secret="s" * 40, issuer="chat4all", ttl_seconds=60, redis=redis)
    user_id = str(uuid.uuid4())
    token, exp = tokens.issue(user_id)
    assert exp - time.time() == pytest.approx(60, abs=2)
    claims = await tokens.verify(token, timeout=1)
    assert claims.user_id == user_id and claims.expires_at == exp
    await tokens.revoke(claims)
    ((key, (_, ttl)),) = redis.data.items()
    assert claims.jti in key and 55 <= ttl <= 62  # kept only until the token would expire
    with pytest.raises(ApiError, match="revoked"):
        await tokens.verify(token, timeout=1)


async def test_token_checks_are_cached_briefly_and_revocation_here_applies_at_once() -> None:
    redis = FakeRedis()
    tokens = TokenService(secret="s" * 40, issuer="chat4all", ttl_seconds=60, redis=redis, cache_seconds=1.0)
    token, _ = tokens.issue(str(uuid.uuid4()))
    claims = await tokens.verify(token, timeout=1)
    for _ in range(5):
        assert await tokens.verify(token, timeout=1) == claims
    assert redis.lookups == 1  # one revocation lookup for six calls
    # Revoked through another process (straight into Redis): refused once the cached check lapses.
    other, _ = tokens.issue(str(uuid.uuid4()))
    other_claims = await tokens.verify(other, timeout=1)
    redis.data["chat4all:revoked:" + other_claims.jti] = ("1", 60)
    await tokens.verify(other, timeout=1)  # still within cache_seconds
    await asyncio.sleep(1.05)
    with pytest.raises(ApiError, match="revoked"):
        await tokens.verify(other, timeout=1)
    # Revoked through this process: refused at once, cache or not.
    await tokens.revoke(claims)
    with pytest.raises(ApiError, match="revoked"):
        await tokens.verify(token, timeout=1)


async def test_a_cached_token_still_expires_on_time() -> None:
    tokens = TokenService(
        secret="s" * 40, issuer="chat4all", ttl_seconds=1, redis=FakeRedis(), cache_seconds=60
    )
    token, exp = tokens.issue(str(uuid.uuid4()))
    await tokens.verify(token, timeout=1)
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(ApiError, match="expired"):
        await tokens.verify(token, timeout=1)


async def test_tokens_refuse_expired_forged_and_incomplete() -> None:
    tokens = TokenService(secret="s" * 40, issuer="chat4all", ttl_seconds=60, redis=FakeRedis())
    now = int(time.time())
    base = {"sub": str(uuid.uuid4()), "iss": "chat4all", "iat": now, "exp": now + 60, "jti": "j"}
    cases = {
        "expired": jwt.encode({**base, "exp": now - 1}, "s" * 40, algorithm="HS256"),
        "invalid": jwt.encode(base, "t" * 40, algorithm="HS256"),
    }
    with pytest.raises(ApiError, match="expired"):
        await tokens.verify(cases["expired"], timeout=1)
    with pytest.raises(ApiError, match="invalid"):
        await tokens.verify(cases["invalid"], timeout=1)
    for missing in ("exp", "iss", "sub", "jti"):
        token = jwt.encode({k: v for k, v in base.items() if k != missing}, "s" * 40, algorithm="HS256")
        with pytest.raises(ApiError) as exc:
            await tokens.verify(token, timeout=1)
        assert code_of(exc) == grpc.StatusCode.UNAUTHENTICATED
    none_alg = jwt.encode(base, None, algorithm="none")
    with pytest.raises(ApiError, match="invalid"):
        await tokens.verify(none_alg, timeout=1)


def test_secret_required_outside_dev_mode(tmp_path) -> None:
    with pytest.raises(MissingSecret):
        resolve_secret(Settings(dev_mode=False, jwt_secret=None, stack_dir=tmp_path))
    with pytest.raises(MissingSecret):
        resolve_secret(Settings(dev_mode=False, jwt_secret="too-short", stack_dir=tmp_path))
    assert resolve_secret(Settings(dev_mode=False, jwt_secret="x" * 32, stack_dir=tmp_path)) == "x" * 32
    # Dev mode generates one, keeps it private, and reuses it.
    generated = resolve_secret(Settings(dev_mode=True, jwt_secret=None, stack_dir=tmp_path))
    assert len(generated) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "api-dev-jwt-secret").st_mode) == 0o600
    assert resolve_secret(Settings(dev_mode=True, jwt_secret=None, stack_dir=tmp_path)) == generated


async def test_passwords_are_hashed_and_verified_off_the_loop() -> None:
    passwords = PasswordHasherPool(threads=1, queue=4)
    hashed = await passwords.hash("correct horse")
    assert hashed.startswith("$argon2") and "correct horse" not in hashed
    assert await passwords.verify(hashed, "correct horse")
    assert not await passwords.verify(hashed, "wrong horse")
    assert not await passwords.verify(None, "anything")  # unknown user: still costs a verification

    # The loop keeps running while a hash is computed.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await passwords.hash("another one")
    task.cancel()
    assert ticks >= 3
    passwords.close()


def test_cli_session_file_is_private(tmp_path, monkeypatch) -> None:
    from cli import client

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = client.save_session({"access_token": "t", "user_id": "u"})
    assert path.parent == tmp_path / "chat4all"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    os.chmod(path, 0o644)
    client.save_session({"access_token": "t2"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert client.load_session() == {"access_token": "t2"}
