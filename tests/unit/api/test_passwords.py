"""The argon2 pool: hashes off the event loop, bounded per owner and in all."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from api.errors import ApiError
from api.passwords import PasswordHasherPool


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


async def test_the_hash_pool_refuses_beyond_its_queue_and_per_owner() -> None:
    pool = PasswordHasherPool(threads=1, queue=1, per_owner=2)
    try:
        first = asyncio.ensure_future(pool.hash("password-one", owner="a"))
        second = asyncio.ensure_future(pool.hash("password-two", owner="a"))
        await asyncio.sleep(0)
        assert pool.busy == 2
        # Owner a holds its two places; and the pool (1 running + 1 queued) is full for everyone.
        for owner in ("a", "b"):
            with pytest.raises(ApiError) as refused:
                await pool.hash("password-three", owner=owner)
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            ((name, wait),) = refused.value.trailers
            assert name == "retry-after" and float(wait) > 0
        await asyncio.gather(first, second)
        await asyncio.sleep(0.01)  # the threads' releases run on the loop
        assert pool.busy == 0
        assert await pool.verify(await pool.hash("password-four", owner="b"), "password-four", owner="b")
    finally:
        pool.close()


async def test_one_owner_cannot_take_the_whole_queue() -> None:
    pool = PasswordHasherPool(threads=1, queue=3, per_owner=1)
    try:
        mine = asyncio.ensure_future(pool.hash("password-one", owner="attacker"))
        await asyncio.sleep(0)
        with pytest.raises(ApiError):
            await pool.hash("password-two", owner="attacker")
        assert await pool.hash("password-three", owner="someone-else")
        await mine
    finally:
        pool.close()
