"""The gRPC API server (grpc.aio): services, interceptors, health, reflection and metrics.

Adding a service: append a `module:function` to EXTRA_SERVICES. The function takes the ApiDeps and
returns a ServiceRegistration; the server registers it, lists it in reflection and health, runs its
optional `start()` / `stop()` coroutines, and puts it behind the auth interceptor (its methods
need a token unless listed in api.auth.PUBLIC_METHODS) and the error/metrics interceptor.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from api import metrics
from api.auth import AuthInterceptor
from api.connection_policy import connection_options
from api.deps import ApiDeps, build_deps
from api.health import watch_dependencies
from api.interceptors import ObservabilityInterceptor
from api.startup import check_settings
from api.tls import grpc_server_credentials, load_server_tls
from api.validation import InputInterceptor
from chat4all.settings import Settings
from chat4all.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)

logger = logging.getLogger(__name__)

# Services other areas own, loaded by name so that this module does not change for them.
# A module that is not there yet is skipped with a warning.
EXTRA_SERVICES: tuple[str, ...] = ("api.services.files:registration", "gateway.service:registration")


class PortInUse(RuntimeError):
    """The API's port could not be bound."""


@dataclass(frozen=True, kw_only=True)
class ServiceRegistration:
    """One gRPC service: its generated `add_XServicer_to_server`, the servicer and its full name."""

    add_fn: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    name: str  # e.g. "chat4all.v1.FileService", for reflection and health


def core_services(deps: ApiDeps) -> list[ServiceRegistration]:
    """The services this module owns."""
    from api.services.auth import AuthServicer
    from api.services.conversations import ConversationServicer
    from api.services.messages import MessageServicer
    from api.services.users import UserServicer

    def full_name(module: Any, service: str) -> str:
        return module.DESCRIPTOR.services_by_name[service].full_name

    return [
        ServiceRegistration(
            add_fn=auth_pb2_grpc.add_AuthServiceServicer_to_server,
            servicer=AuthServicer(deps=deps),
            name=full_name(auth_pb2, "AuthService"),
        ),
        ServiceRegistration(
            add_fn=users_pb2_grpc.add_UserServiceServicer_to_server,
            servicer=UserServicer(deps=deps),
            name=full_name(users_pb2, "UserService"),
        ),
        ServiceRegistration(
            add_fn=conversations_pb2_grpc.add_ConversationServiceServicer_to_server,
            servicer=ConversationServicer(deps=deps),
            name=full_name(conversations_pb2, "ConversationService"),
        ),
        ServiceRegistration(
            add_fn=messages_pb2_grpc.add_MessageServiceServicer_to_server,
            servicer=MessageServicer(deps=deps),
            name=full_name(messages_pb2, "MessageService"),
        ),
    ]


def service_registrations(deps: ApiDeps) -> list[ServiceRegistration]:
    """Core services plus every EXTRA_SERVICES entry whose module exists."""
    registrations = core_services(deps)
    for target in EXTRA_SERVICES:
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise  # the module exists but one of its imports is missing: a real error
            logger.warning("service %s not available (module %s missing); skipped", target, module_name)
            continue
        registrations.append(getattr(module, attr)(deps))
    return registrations


def build_server(deps: ApiDeps, registrations: list[ServiceRegistration]) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with every service, health and reflection, not yet bound or started."""
    settings = deps.settings
    server = grpc.aio.server(
        interceptors=[
            ObservabilityInterceptor(),
            AuthInterceptor(tokens=deps.tokens, timeout=settings.api_storage_timeout_seconds),
            # Innermost: every request's fields against api.limits, before the handler's first query.
            InputInterceptor(
                settings=settings,
                services=[descriptor_pool.Default().FindServiceByName(reg.name) for reg in registrations],
            ),
        ],
        options=[
            # gRPC's default 4 MiB is less than a 4 MiB file chunk plus framing.
            ("grpc.max_receive_message_length", settings.api_max_message_bytes),
            ("grpc.max_send_message_length", settings.api_max_message_bytes),
            # gRPC sets SO_REUSEPORT by default: a second API on the same port would silently
            # share its traffic. Fail to bind instead.
            ("grpc.so_reuseport", 0),
            # Bound gRPC's own receive buffering: with BDP probing its HTTP/2 window grows on a
            # busy machine and a 2 GiB upload then costs the API more than 64 MiB of RSS
            # (measured in docs/files.md).
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", 2 * 1024 * 1024),
            *connection_options(settings),
        ],
    )
    for reg in registrations:
        reg.add_fn(reg.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [reg.name for reg in registrations]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return server, health_servicer


async def serve(settings: Settings, *, ready: Callable[[int], None] | None = None) -> None:
    """Run the API until SIGTERM/SIGINT, then let in-flight calls finish (api_grace_seconds).

    Refuses to start (MissingSecret, UnsafeSettings) with the settings api.startup names."""
    check_settings(settings)
    deps = build_deps(settings)
    registrations = service_registrations(deps)
    server, health_servicer = build_server(deps, registrations)
    address = f"{settings.api_host}:{settings.api_port}"
    tls = load_server_tls(settings=settings)
    try:
        port = server.add_secure_port(address, grpc_server_credentials(tls)) if tls else server.add_insecure_port(address)
    except RuntimeError:
        raise PortInUse(f"cannot listen on {address}: is another API running there?") from None
    try:
        metrics.serve_metrics(settings.api_metrics_port, settings.api_host)
    except OSError:
        raise PortInUse(f"cannot serve metrics on {settings.api_host}:{settings.api_metrics_port}: port in use") from None
    for reg in registrations:
        if hasattr(reg.servicer, "start"):
            await reg.servicer.start()
    await server.start()
    names = [reg.name for reg in registrations]
    watcher = asyncio.create_task(watch_dependencies(deps, health_servicer, names))
    logger.info(
        "API listening on %s:%s (%s; metrics on :%s), services: %s", settings.api_host, port,
        "TLS" if tls else "plain TCP", settings.api_metrics_port, ", ".join(names),
    )
    if ready is not None:
        ready(port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down: %.1f s for in-flight calls", settings.api_grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    watcher.cancel()
    await server.stop(settings.api_grace_seconds)
    for reg in registrations:
        if hasattr(reg.servicer, "stop"):
            await reg.servicer.stop()
    await deps.close()
    logger.info("API stopped")
