"""The gRPC server's per-connection policy: concurrent streams, keepalive, idle connections."""

from __future__ import annotations

from chat4all.settings import Settings


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """grpc.aio.server options from settings (docs/security.md, Live connections)."""
    ms = _ms
    options = [
        # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: what one TCP connection may have open; the
        # client queues calls over it. Live streams are capped per user on top (gateway/limits.py).
        ("grpc.max_concurrent_streams", settings.api_max_concurrent_streams),
        # Ping a quiet connection, so that a Subscribe stream whose client vanished (no FIN: a
        # laptop closed, a NAT dropped it) ends and frees its slot instead of lingering for hours.
        ("grpc.keepalive_time_ms", ms(settings.api_keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", ms(settings.api_keepalive_timeout_seconds)),
        ("grpc.http2.ping_timeout_ms", ms(settings.api_keepalive_timeout_seconds)),
        # Keep pinging a stream that carries no data (a quiet Subscribe): gRPC stops after 2 by default.
        ("grpc.http2.max_pings_without_data", 0),
        # Clients' own keepalive: tolerated down to this interval, also with no call open (an idle
        # `chat4all watch` channel between reconnects); faster pingers get GOAWAY too_many_pings.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(settings.api_min_client_ping_seconds)),
    ]
    if settings.api_max_connection_idle_seconds > 0:
        options.append(("grpc.max_connection_idle_ms", ms(settings.api_max_connection_idle_seconds)))
    return options
