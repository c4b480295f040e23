"""Client addresses: the peer's host, IPv6 hosts grouped by their /64, a trusted header's last entry only."""

from __future__ import annotations

import pytest

from api.client_address import address_key, client_address, peer_host


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
