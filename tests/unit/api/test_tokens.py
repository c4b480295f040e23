"""Access tokens: issued, verified, revoked, cached briefly, refused when expired, forged or incomplete; the secret they are signed with."""

from __future__ import annotations

import asyncio
import os
import stat
import time
import uuid

import grpc
import jwt
import pytest

from api.errors import ApiError
from api.tokens import MissingSecret, TokenService, resolve_secret
from chat4all.settings import Settings
from tests.unit.api.fakes import FakeRedis


def code_of(exc: pytest.ExceptionInfo) -> grpc.StatusCode:
    assert isinstance(exc.value, ApiError)
    return exc.value.code


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


def test_a_short_jwt_secret_is_refused_in_dev_mode_too(tmp_path) -> None:
    with pytest.raises(MissingSecret, match="shorter than 32 bytes"):
        resolve_secret(Settings(dev_mode=True, jwt_secret="x", stack_dir=tmp_path))
    (tmp_path / "api-dev-jwt-secret").write_text("short")
    with pytest.raises(MissingSecret, match="delete it"):
        resolve_secret(Settings(dev_mode=True, jwt_secret=None, stack_dir=tmp_path))
