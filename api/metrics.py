"""Prometheus metrics of the API: requests, latency and errors per method and status code."""

from __future__ import annotations

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter(
    "chat4all_api_requests_total", "gRPC calls handled, by method and status code.", ["method", "code"]
)
ERRORS = Counter(
    "chat4all_api_errors_total",
    "gRPC calls that did not end OK, by method and status code.",
    ["method", "code"],
)
LATENCY = Histogram(
    "chat4all_api_request_seconds",
    "Time to handle a gRPC call, by method.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge(
    "chat4all_api_calls_in_progress",
    "gRPC calls being handled now, long streams (Subscribe, UploadFile) included; no labels: it moves twice a call.",
)
MESSAGES_SENT = Counter(
    "chat4all_api_messages_published_total", "MessageEvents published to Kafka (acknowledged)."
)
RATE_LIMITED = Counter("chat4all_api_rate_limited_total", "SendMessage calls refused by the rate limit.")
SHED = Counter(
    "chat4all_api_shed_total",
    "SendMessage calls refused by admission control, by reason (inflight, lag).",
    ["reason"],
)
AUTH_REFUSED = Counter(
    "chat4all_api_auth_refused_total",
    "Login and Register calls refused before any password hash, by reason (address, username, password_pool).",
    ["reason"],
)
PIPELINE_LAG = Gauge(
    "chat4all_api_pipeline_lag",
    "Messages the router group has not committed on `messages`, as last read (-1 = unknown).",
)
PIPELINE_DRAIN = Gauge(
    "chat4all_api_pipeline_drain_rate",
    "Messages/s the router group committed on `messages` over the last readings.",
)

# (full method, code) -> the label children to update: .labels() costs a lock and a few
# allocations, and every call would pay it three times.
_children: dict[tuple[str, grpc.StatusCode], tuple] = {}


def _short(method: str) -> str:
    service, _, rpc = method.lstrip("/").partition("/")
    return f"{service.rsplit('.', 1)[-1]}/{rpc}"


def observe(method: str, code: grpc.StatusCode, seconds: float) -> None:
    """Count one call; ``method`` is gRPC's full name, labelled short: ``/chat4all.v1.X/Y`` -> ``X/Y``."""
    children = _children.get((method, code))
    if children is None:
        name = _short(method)
        errors = ERRORS.labels(name, code.name) if code is not grpc.StatusCode.OK else None
        children = _children[(method, code)] = (
            REQUESTS.labels(name, code.name),
            LATENCY.labels(name),
            errors,
        )
    requests, latency, errors = children
    requests.inc()
    latency.observe(seconds)
    if errors is not None:
        errors.inc()


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on ``port`` (a daemon thread of prometheus_client)."""
    start_http_server(port, addr=host)
