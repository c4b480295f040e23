"""Writes grafana/dashboards/chat4all.json: the Chat4All overview dashboard (run after changing panels)."""

from __future__ import annotations

import json
from pathlib import Path

PANELS: list[tuple[str, list[tuple[str, str]], str]] = [
    # (title, [(promql, legend)], unit)
    (
        "API calls/s by method",
        [("sum by (method) (rate(chat4all_api_requests_total[1m]))", "{{method}}")],
        "reqps",
    ),
    (
        "API latency",
        [
            (
                f"histogram_quantile({q}, sum by (le) (rate(chat4all_api_request_seconds_bucket[1m])))",
                f"p{int(q * 100)}",
            )
            for q in (0.5, 0.95, 0.99)
        ],
        "s",
    ),
    ("API errors/s by code", [("sum by (code) (rate(chat4all_api_errors_total[1m]))", "{{code}}")], "reqps"),
    ("Rate-limited sends/s", [("rate(chat4all_api_rate_limited_total[1m])", "limited")], "reqps"),
    (
        "Events processed/s by agent",
        [("sum by (agent) (rate(chat4all_agent_events_total[1m]))", "{{agent}}")],
        "ops",
    ),
    (
        "Event processing p95 by agent",
        [
            (
                "histogram_quantile(0.95, sum by (le, agent) (rate(chat4all_agent_event_seconds_bucket[1m])))",
                "{{agent}}",
            )
        ],
        "s",
    ),
    (
        "Messages routed/s",
        [
            ("sum(rate(chat4all_messages_routed_total[1m]))", "routed"),
            ("sum(rate(chat4all_router_duplicates_total[1m]))", "duplicates skipped"),
        ],
        "ops",
    ),
    (
        "Outbound/s by channel",
        [("sum by (channel) (rate(chat4all_outbound_total[1m]))", "{{channel}}")],
        "ops",
    ),
    (
        "Receipt transitions/s",
        [
            (
                "sum by (status, outcome) (rate(chat4all_receipt_transitions_total[1m]))",
                "{{status}} {{outcome}}",
            )
        ],
        "ops",
    ),
    (
        "Send -> status p95",
        [
            (
                "histogram_quantile(0.95, sum by (le, status) (rate(chat4all_status_latency_seconds_bucket[1m])))",
                "{{status}}",
            )
        ],
        "s",
    ),
    ("Consumer lag by topic", [("sum by (topic) (chat4all_consumer_lag)", "{{topic}}")], "short"),
    (
        "Consumer lag by partition",
        [("max by (topic, partition) (chat4all_consumer_lag)", "{{topic}} {{partition}}")],
        "short",
    ),
    (
        "Connector sends/s",
        [("sum by (channel, outcome) (rate(chat4all_connector_sends_total[1m]))", "{{channel}} {{outcome}}")],
        "ops",
    ),
    (
        "Deliveries/s by outcome",
        [
            (
                "sum by (channel, outcome) (rate(chat4all_connector_deliveries_total[1m]))",
                "{{channel}} {{outcome}}",
            )
        ],
        "ops",
    ),
    (
        "Provider call p95",
        [
            (
                "histogram_quantile(0.95, sum by (le, channel) (rate(chat4all_connector_provider_call_seconds_bucket[1m])))",
                "{{channel}}",
            )
        ],
        "s",
    ),
    (
        "Circuit breaker state (0 closed, 1 half-open, 2 open)",
        [("chat4all_connector_breaker_state", "{{channel}}")],
        "short",
    ),
    (
        "Scheduled receipts pending",
        [("sum by (channel) (chat4all_schedule_pending)", "{{channel}}")],
        "short",
    ),
    ("Dead letters/s", [("sum by (source) (rate(chat4all_dead_letters_total[1m]))", "{{source}}")], "ops"),
    ("Cassandra retries/s (outage)", [("sum(rate(chat4all_cassandra_retries_total[1m]))", "retries")], "ops"),
    ("Live connections", [("sum by (transport) (chat4all_realtime_connections)", "{{transport}}")], "short"),
    ("API calls in progress", [("sum(chat4all_api_calls_in_progress)", "calls")], "short"),
    (
        "Dependencies reached (1 up, 0 down)",
        [("min by (job, dependency) (chat4all_dependency_up)", "{{job}} {{dependency}}")],
        "short",
    ),
    ("Targets up", [("sum by (job) (up)", "{{job}}")], "short"),
    (
        "Records re-fetched after a seek (takeover)",
        [("sum by (topic) (rate(chat4all_stale_records_skipped_total[1m]))", "{{topic}}")],
        "ops",
    ),
]


def dashboard() -> dict:
    """The Grafana dashboard (JSON model): one time-series panel per entry of PANELS, three to a row."""
    panels = []
    for i, (title, targets, unit) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": (i // 3) * 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(65 + j), "expr": expr, "legendFormat": legend}
                    for j, (expr, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": "chat4all-overview",
        "title": "Chat4All overview",
        "schemaVersion": 39,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "dashboards" / "chat4all.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
