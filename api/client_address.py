"""The address a call comes from, as the key of per-address limits (the peer, or a trusted proxy's header)."""

from __future__ import annotations

import ipaddress

import grpc

# Longest header value looked at: a proxy's list of a few hops is far shorter.
_MAX_HEADER_CHARS = 1024


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string: ``ipv4:1.2.3.4:5678`` -> ``1.2.3.4``, ``ipv6:[::1]:5678`` -> ``::1``."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0] if rest.startswith("[") else rest
        return host.strip("[]")
    return peer  # unix:..., or a form this does not know: the whole string is the key


def address_key(host: str) -> str:
    """What a limit counts against: an IPv4 address, or the /64 of an IPv6 one.

    A single host commonly holds a whole /64, so its addresses are one client. Anything else as given.
    """
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:_MAX_HEADER_CHARS]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def client_address(context: grpc.aio.ServicerContext, *, trusted_header: str | None) -> str:
    """The caller's address key.

    With ``trusted_header`` (e.g. ``x-forwarded-for``, set by a proxy in front of the API), the
    header's last entry, the one that proxy added; without the header, or with a value that is no
    address, the peer's.
    """
    if trusted_header:
        name = trusted_header.lower()
        for key, value in context.invocation_metadata() or ():
            if key == name and isinstance(value, str):
                last = value[-_MAX_HEADER_CHARS:].rsplit(",", 1)[-1].strip()
                try:
                    ipaddress.ip_address(last.split("%", 1)[0])
                except ValueError:
                    break
                return address_key(last)
    return address_key(peer_host(context.peer() or ""))
