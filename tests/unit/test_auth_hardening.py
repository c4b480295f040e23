"""Pure units of the authentication hardening: client address keys, the argon2 pool's bounds, start-up refusals."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from api.client_address import address_key, client_address, peer_host
from api.errors import ApiError
from api.passwords import PasswordHasherPool
from api.startup import UnsafeSettings, check_settings
from api.tokens import MissingSecret, resolve_secret
from chat4all.settings import Settings

GOOD_SECRET = "s" * 40


class _Context:
    """The two ServicerContext methods client_address reads."""

    def __init__(self, peer: str, metadata: tuple = ()) -> None:
        self._peer, self._metadata = peer, metadata

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple:
        return self._metadata


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:127.0.0.1:50432", "127.0.0.1"),
        ("ipv6:[::1]:50432", "::1"),
        ("ipv6:[2001:db8::7]:1", "2001:db8::7"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
    ],
)
def test_peer_host(peer: str, host: str) -> None:
    assert peer_host(peer) == host


def test_address_keys_group_an_ipv6_host_by_its_64() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("not an address") == "not an address"


def test_only_a_trusted_header_names_the_address_and_only_its_last_entry() -> None:
    spoofed = _Context("ipv4:127.0.0.1:1", (("x-forwarded-for", "198.51.100.1, 203.0.113.9"),))
    assert client_address(spoofed, trusted_header=None) == "127.0.0.1"
    assert client_address(spoofed, trusted_header="X-Forwarded-For") == "203.0.113.9"
    garbage = _Context("ipv4:127.0.0.1:1", (("x-forwarded-for", "'; DROP"),))
    assert client_address(garbage, trusted_header="x-forwarded-for") == "127.0.0.1"
    absent = _Context("ipv6:[2001:db8::1]:1")
    assert client_address(absent, trusted_header="x-forwarded-for") == "2001:db8::/64"


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


def test_a_short_jwt_secret_is_refused_in_dev_mode_too(tmp_path) -> None:
    with pytest.raises(MissingSecret, match="shorter than 32 bytes"):
        resolve_secret(Settings(dev_mode=True, jwt_secret="x", stack_dir=tmp_path))
    (tmp_path / "api-dev-jwt-secret").write_text("short")
    with pytest.raises(MissingSecret, match="delete it"):
        resolve_secret(Settings(dev_mode=True, jwt_secret=None, stack_dir=tmp_path))


def test_start_up_refusals_outside_dev_mode(tmp_path) -> None:
    base = {"jwt_secret": GOOD_SECRET, "stack_dir": tmp_path}
    check_settings(Settings(dev_mode=True, **base))  # the local stack: its S3 secret, no TLS
    with pytest.raises(UnsafeSettings, match="CHAT4ALL_S3_SECRET_KEY"):
        check_settings(Settings(dev_mode=False, **base))
    with pytest.raises(UnsafeSettings, match="CHAT4ALL_TLS_CERT_FILE and CHAT4ALL_TLS_KEY_FILE are required"):
        check_settings(Settings(dev_mode=False, s3_secret_key="another-secret", **base))
    with pytest.raises(UnsafeSettings, match="set both"):
        check_settings(Settings(dev_mode=True, tls_key_file=tmp_path / "k.pem", **base))
