"""Forwarding an inspector request to the worker that owns the partition: its JSON twin, and who answered."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

logger = logging.getLogger(__name__)

# Set on a forwarded request: the receiver answers from its own store even if it thinks
# another worker owns the partition (two assignments seen at different moments), so a request
# is forwarded at most once.
HOP_HEADER = "X-Chat4all-Inspector-Hop"
TIMEOUT_SECONDS = 5.0


class RoutingFailed(Exception):
    """The owning worker did not answer (down, rebalancing, or refusing the request)."""


async def fetch_json(
    session: aiohttp.ClientSession,
    *,
    worker_url: str,
    path: str,
    query: Mapping[str, str] | None = None,
    authorization: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """GET ``path`` from the worker at ``worker_url`` as JSON (the inspector's JSON twin), forwarded once."""
    url = URL(worker_url).with_path(path).with_query(dict(query or {}))
    headers = {"Accept": "application/json", HOP_HEADER: "1"}
    if authorization:
        headers["Authorization"] = authorization  # the group shares one operator token
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 500 or not isinstance(body, dict):
                raise RoutingFailed(f"{worker_url} answered {resp.status}")
            body.setdefault("status_code", resp.status)
            return body
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        logger.warning("inspector request to %s%s failed: %s", worker_url, path, type(exc).__name__)
        raise RoutingFailed(f"{worker_url} did not answer: {type(exc).__name__}") from exc
