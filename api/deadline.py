"""How long a step may take so that the call still answers before its gRPC deadline."""

from __future__ import annotations

import grpc

# Kept back from the client's deadline so that an UNAVAILABLE answer still reaches it.
_MARGIN_SECONDS = 0.15
_MIN_SECONDS = 0.05


def budget(context: grpc.aio.ServicerContext | None, cap: float) -> float:
    """Seconds a dependency call may take: ``cap``, cut to what the call's deadline leaves."""
    if context is None:
        return cap
    remaining = context.time_remaining()
    if remaining is None:
        return cap
    return max(_MIN_SECONDS, min(cap, remaining - _MARGIN_SECONDS))
