"""A client for one worker's web pages (/health, /ui/, /connectors, /connectors/faults, /metrics), by its URL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chat4all.settings import Settings


class WorkerPages:
    """Reads and changes one worker through its web server; works for any worker, started here or not."""

    def __init__(self, url: str, *, settings: Settings, timeout: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self._settings = settings
        self._timeout = timeout

    def _request(self, path: str, *, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        # The operator endpoints and the inspector's pages need the token when one is set.
        token = self._settings.operator_token
        if token is not None and token.get_secret_value():
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            return response.read()

    def health(self) -> dict[str, Any] | None:
        """The /health body (also when it answers 503), or None when the worker does not answer."""
        try:
            return json.loads(self._request("/health"))
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read())
            except ValueError:
                return None
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        """Healthy, partitions assigned and no rebalance in progress."""
        h = self.health()
        return bool(
            h
            and h.get("status") == "ok"
            and not h["kafka"].get("rebalancing")
            and h["kafka"].get("assigned_partitions", 0) > 0
        )

    def connectors(self) -> dict[str, Any]:
        """The /connectors page: each channel's breaker (state, transitions, owned partitions) and the faults."""
        return json.loads(self._request("/connectors"))

    def set_outage(self, outage: bool) -> dict[str, Any]:
        """Inject (or lift) an outage of every simulated channel on this worker (an operator endpoint)."""
        return json.loads(self._request("/connectors/faults", body={"outage": outage}))

    def overview(self) -> dict[str, Any]:
        """The inspector's /ui/ page as JSON: assignment, tables per partition (entries, changelog offsets), connectors."""
        return json.loads(self._request("/ui/"))

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus metric's samples on /metrics whose labels include ``labels`` (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self._request("/metrics").decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total
