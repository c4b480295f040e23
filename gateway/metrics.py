"""Prometheus metrics of the realtime gateway (served on the API's metrics port)."""

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge(
    "chat4all_realtime_connections",
    "Live event streams open on this gateway, by transport (websocket connections, grpc Subscribe streams).",
    ["transport"],
)
TRANSPORTS = ("websocket", "grpc")
for _transport in TRANSPORTS:  # at 0 from the start: "no client" is a value, not missing data
    CONNECTIONS.labels(_transport)
EVENTS = Counter(
    "chat4all_realtime_events_total", "Notifications read by the gateway, by outcome.", ["outcome"]
)
DISCONNECTS = Counter(
    "chat4all_realtime_disconnects_total", "Client streams closed, by reason.", ["transport", "reason"]
)
