"""What a service module gives the API server: its servicer, how to add it to a server, and its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from api.deps import ApiDeps


@dataclass(frozen=True, kw_only=True)
class ServiceRegistration:
    """One gRPC service: its generated `add_XServicer_to_server`, the servicer and its full name."""

    add_fn: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    name: str  # e.g. "chat4all.v1.FileService", for reflection and health


# Each service module has one: `def registration(deps: ApiDeps) -> ServiceRegistration`.
ServiceFactory = Callable[[ApiDeps], ServiceRegistration]


def full_name(pb2_module: Any, service: str) -> str:
    """The full name of `service` as its generated module declares it, e.g. "chat4all.v1.AuthService"."""
    return pb2_module.DESCRIPTOR.services_by_name[service].full_name
