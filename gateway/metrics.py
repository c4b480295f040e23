"""Prometheus metrics of the realtime gateway (served on the API's metrics port)."""

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge(
    "chat4all_realtime_connections", "Clients connected to this gateway, by transport.", ["transport"]
)
EVENTS = Counter(
    "chat4all_realtime_events_total", "Notifications read by the gateway, by outcome.", ["outcome"]
)
DISCONNECTS = Counter(
    "chat4all_realtime_disconnects_total", "Client streams closed, by reason.", ["transport", "reason"]
)
