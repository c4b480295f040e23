"""Login and Register abuse limits on real API servers and the real Redis.

Failed logins per username (growing wait, shared by every API process), attempts per client
address (the peer, or a trusted proxy's header), and argon2 on a bounded pool of its own that a
flood cannot take from another user.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid

import grpc
import pytest
from redis.asyncio import Redis

from api.login_throttle import LoginThrottle, Outcome
from chat4all.redis_client import redis_client
from chat4all.settings import Settings
from chat4all.v1 import auth_pb2, users_pb2
from cli.files import upload_file
from cli.harness.api_client import ApiClient, expect_status

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode
THRESHOLD = 5  # login_failure_threshold's default
XFF = "x-forwarded-for"


def retry_after(err: grpc.RpcError) -> float:
    trailers = dict(err.trailing_metadata() or ())
    assert "retry-after" in trailers, f"no retry-after on {err.code().name}: {err.details()}"
    return float(trailers["retry-after"])


def outcomes(futures: list) -> list[tuple[grpc.StatusCode, grpc.RpcError | None]]:
    out = []
    for future in futures:
        try:
            future.result()
            out.append((CODE.OK, None))
        except grpc.RpcError as exc:
            out.append((exc.code(), exc))
    return out


def some_address() -> str:
    """A client address of its own for this test run (sent through the trusted proxy header)."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def login(api: ApiClient, username: str, password: str, **kwargs) -> auth_pb2.LoginResponse:
    return api.auth.Login(auth_pb2.LoginRequest(username=username, password=password), timeout=30, **kwargs)


def test_a_concurrent_wrong_password_flood_is_refused_after_the_threshold(
    api: ApiClient, api_factory
) -> None:
    other = api_factory()  # a second API process on the same Redis
    user = api.register_and_login("flood")
    bad = auth_pb2.LoginRequest(username=user.username, password="not-the-password")
    results = outcomes([api.auth.Login.future(bad, timeout=60) for _ in range(30)])
    codes = [code for code, _ in results]
    # Only the threshold's worth ran their argon2 check; the rest were refused before any hash.
    assert codes.count(CODE.UNAUTHENTICATED) == THRESHOLD, codes
    assert codes.count(CODE.RESOURCE_EXHAUSTED) == 30 - THRESHOLD, codes
    for code, err in results:
        if code == CODE.RESOURCE_EXHAUSTED:
            assert 0 < retry_after(err) <= 300
            assert "failed logins for this username" in err.details()

    # The right password waits too: the wait belongs to the username, not the guess.
    err = expect_status(CODE.RESOURCE_EXHAUSTED, login, api, user.username, user.password)
    first_wait = retry_after(err)
    assert 0 < first_wait <= 1.0  # login_backoff_seconds

    # Every API process sees the same count: the second server refuses it as well.
    expect_status(CODE.RESOURCE_EXHAUSTED, login, other, user.username, user.password)

    # After the wait one more attempt runs; a failure doubles the next wait.
    time.sleep(first_wait + 0.05)
    expect_status(CODE.UNAUTHENTICATED, login, api, user.username, "still-not-the-password")
    err = expect_status(CODE.RESOURCE_EXHAUSTED, login, other, user.username, user.password)
    second_wait = retry_after(err)
    assert 1.0 < second_wait <= 2.0

    # A successful login forgets the failures: threshold - 1 wrong passwords are answered again.
    time.sleep(second_wait + 0.05)
    assert login(api, user.username, user.password).user_id == user.user_id
    for _ in range(THRESHOLD - 1):
        expect_status(CODE.UNAUTHENTICATED, login, api, user.username, "wrong-again")
    assert login(api, user.username, user.password).user_id == user.user_id


def test_attempts_per_address_are_limited_and_only_a_trusted_header_names_the_address(api_factory) -> None:
    trusting = api_factory(
        {
            "CHAT4ALL_TRUSTED_PROXY_HEADER": XFF,
            "CHAT4ALL_AUTH_ADDRESS_RATE_PER_SECOND": "0.05",
            "CHAT4ALL_AUTH_ADDRESS_BURST": "5",
        }
    )
    address = some_address()
    # Anything a client puts in front of the list is ignored: the proxy's entry (the last) counts.
    md = ((XFF, f"{some_address()}, {address}"),)
    password = "address-limit-pw"
    names = [f"addr-{uuid.uuid4().hex[:10]}" for _ in range(5)]
    for name in names:
        trusting.auth.Register(
            auth_pb2.RegisterRequest(username=name, password=password), metadata=md, timeout=30
        )
    # The bucket is empty (one attempt back every 20 s): Register and Login alike wait.
    err = expect_status(
        CODE.RESOURCE_EXHAUSTED,
        trusting.auth.Register,
        auth_pb2.RegisterRequest(username=f"addr-{uuid.uuid4().hex[:10]}", password=password),
        metadata=md,
        timeout=30,
    )
    assert 0 < retry_after(err) <= 20.0 and "from this address" in err.details()
    spoofed_front = ((XFF, f"{some_address()}, {some_address()}, {address}"),)
    err = expect_status(CODE.RESOURCE_EXHAUSTED, login, trusting, names[0], password, metadata=spoofed_front)
    assert "from this address" in err.details()
    # A request that fails the cheap shape checks costs no attempt and says what is wrong.
    expect_status(
        CODE.INVALID_ARGUMENT,
        trusting.auth.Register,
        auth_pb2.RegisterRequest(username="x", password=password),
        metadata=md,
        timeout=30,
    )
    # Another address is not affected.
    assert login(trusting, names[0], password, metadata=((XFF, some_address()),)).user_id

    # Without a trusted header the peer address (127.0.0.1) counts, whatever the header says.
    # (Its own Redis database: the session's API shares 127.0.0.1's bucket in database 0.)
    ignoring = api_factory(
        {
            "CHAT4ALL_REDIS_DB": "2",
            "CHAT4ALL_AUTH_ADDRESS_RATE_PER_SECOND": "0.05",
            "CHAT4ALL_AUTH_ADDRESS_BURST": "3",
        }
    )
    asyncio.run(_flush_db(ignoring))
    for _ in range(3):
        ignoring.auth.Register(
            auth_pb2.RegisterRequest(username=f"peer-{uuid.uuid4().hex[:10]}", password=password),
            metadata=((XFF, some_address()),),
            timeout=30,
        )
    err = expect_status(
        CODE.RESOURCE_EXHAUSTED, login, ignoring, names[0], password, metadata=((XFF, some_address()),)
    )
    assert 0 < retry_after(err) <= 20.0


async def _flush_db(client: ApiClient) -> None:
    settings = Settings(redis_db=int(client.server.env["CHAT4ALL_REDIS_DB"]))
    redis = redis_client(settings)
    try:
        async for key in redis.scan_iter("chat4all:authaddr:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


def test_a_login_flood_leaves_the_hash_pool_and_the_default_executor_to_others(api_factory, tmp_path) -> None:
    api = api_factory({"CHAT4ALL_TRUSTED_PROXY_HEADER": XFF})
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    conversation_id = api.private_conversation(alice, bob)
    path = tmp_path / "photo.bin"
    path.write_bytes(random.randbytes(3 * 1024 * 1024))

    def upload() -> float:
        started = time.monotonic()
        upload_file(
            api.channel,
            alice.md,
            path=path,
            conversation_id=conversation_id,
            upload_id=None,
            chunk_bytes=1024 * 1024,
            max_attempts=1,
        )
        return time.monotonic() - started

    quiet = upload()

    attacker = ((XFF, some_address()),)
    stop = threading.Event()
    seen: list[tuple[grpc.StatusCode, grpc.RpcError | None]] = []

    def flood() -> None:
        # Wrong passwords for ever new usernames (the username throttle never bites), 100 at a time.
        while not stop.is_set():
            wave = [
                api.auth.Login.future(
                    auth_pb2.LoginRequest(username=f"nobody-{uuid.uuid4().hex[:12]}", password="guess-guess"),
                    metadata=attacker,
                    timeout=60,
                )
                for _ in range(100)
            ]
            seen.extend(outcomes(wave))

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        time.sleep(1.0)  # the pool is full of the attacker's hashes by now
        during = upload()
        # Another user from another address logs in while the flood goes on.
        started = time.monotonic()
        me = login(api, bob.username, bob.password, metadata=((XFF, some_address()),))
        login_seconds = time.monotonic() - started
        assert (
            api.users.GetMe(users_pb2.GetMeRequest(), metadata=alice.md, timeout=10).user_id == alice.user_id
        )
    finally:
        stop.set()
        flooder.join(120)
    assert me.user_id == bob.user_id
    codes = [code for code, _ in seen]
    assert set(codes) <= {CODE.UNAUTHENTICATED, CODE.RESOURCE_EXHAUSTED}, set(codes)
    refused = [err for code, err in seen if code == CODE.RESOURCE_EXHAUSTED]
    assert len(refused) > len(codes) / 2, f"{len(refused)} of {len(codes)} refused"
    assert all(retry_after(err) > 0 for err in refused)
    # At most password_hash_per_address (8) of the attacker's hashes run or wait at once, so the
    # others' wait is a few hashes long, and the uploads' S3 calls never queue behind them.
    assert login_seconds < 5.0, f"a login took {login_seconds:.1f} s during the flood"
    assert during < quiet + 5.0, f"upload took {during:.1f} s during the flood, {quiet:.1f} s before"


@pytest.fixture
async def redis(stack: Settings) -> Redis:
    client = redis_client(stack)
    yield client
    await client.aclose()


async def test_the_wait_doubles_per_failure_up_to_the_cap_and_a_success_forgets(redis: Redis) -> None:
    throttle = LoginThrottle(
        redis=redis, threshold=3, backoff_seconds=0.2, backoff_max_seconds=0.7, window_seconds=60, timeout=5
    )
    name = f"throttle-{uuid.uuid4().hex}"
    waits = []
    for _ in range(3):
        attempt = await throttle.begin(name)
        assert attempt.allowed
        waits.append(await throttle.finish(attempt, Outcome.FAILED))
    assert waits == [0.0, 0.0, 0.2]
    refused = await throttle.begin(name)
    assert not refused.allowed and 0 < refused.retry_after_seconds <= 0.2
    await asyncio.sleep(0.25)
    for expected in (0.4, 0.7, 0.7):  # doubling, capped at backoff_max
        attempt = await throttle.begin(name)
        assert attempt.allowed
        assert await throttle.finish(attempt, Outcome.FAILED) == expected
        await asyncio.sleep(expected + 0.05)
    # An attempt that ended otherwise (an outage) frees its slot and counts nothing.
    attempt = await throttle.begin(name)
    assert await throttle.finish(attempt, Outcome.OTHER) == 0
    attempt = await throttle.begin(name)
    assert attempt.allowed
    await throttle.finish(attempt, Outcome.OK)
    # Forgotten: threshold - 1 failures run without a wait again.
    for _ in range(2):
        attempt = await throttle.begin(name)
        assert attempt.allowed and await throttle.finish(attempt, Outcome.FAILED) == 0


async def test_attempts_under_way_hold_the_slots_and_a_lost_one_is_given_up(redis: Redis) -> None:
    throttle = LoginThrottle(
        redis=redis, threshold=2, backoff_seconds=1, backoff_max_seconds=10, window_seconds=60, timeout=5
    )
    name = f"pending-{uuid.uuid4().hex}"
    first, second = await throttle.begin(name), await throttle.begin(name)
    assert first.allowed and second.allowed
    third = await throttle.begin(name)
    assert not third.allowed and third.retry_after_seconds == 1.0  # the wait if both under way fail
    await throttle.finish(first, Outcome.OK)
    # A process that died mid-attempt: its slot is given up once it expires (here: at once).
    key = throttle._key(name) + ":pending"
    await redis.zadd(key, {second.attempt_id: 0})
    assert (await throttle.begin(name)).allowed
