"""The one gauge every process sets for each dependency it needs: whether it reaches it right now."""

from prometheus_client import Gauge

DEPENDENCY_UP = Gauge(
    "chat4all_dependency_up",
    "1 while this process reaches the dependency (cassandra, kafka, redis), 0 while it does not.",
    ["dependency"],
)
