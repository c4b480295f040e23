"""The gRPC API server (grpc.aio): services, interceptors, health, reflection and metrics.

Adding a service: give its module a `registration(deps) -> ServiceRegistration` (api.registration)
and add that function to SERVICES in cli/api.py, the one list of what the API process serves. The
server registers each, lists it in reflection and health, runs its optional `start()` / `stop()`
coroutines, and puts it behind the auth interceptor (its methods need a token unless listed in
api.auth_interceptor.PUBLIC_METHODS) and the error/metrics interceptor. It refuses to start unless the list
serves exactly the services the protos (chat4all/v1) declare.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import signal
from collections import Counter
from collections.abc import Callable, Sequence

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

import chat4all.v1
from api import metrics
from api.auth_interceptor import AuthInterceptor
from api.connection_policy import connection_options
from api.deps import ApiDeps, build_deps
from api.health import watch_dependencies
from api.interceptors import ObservabilityInterceptor, TracingInterceptor
from api.registration import ServiceFactory, ServiceRegistration
from api.startup import check_settings
from api.tls import grpc_server_credentials, load_server_tls
from api.validation import InputInterceptor
from chat4all import scrape_targets, tracing
from chat4all.settings import Settings

logger = logging.getLogger(__name__)


class PortInUse(RuntimeError):
    """The API's port could not be bound."""


class MissingService(RuntimeError):
    """The services given to the server are not exactly those the protos declare."""


def declared_services() -> set[str]:
    """The full name of every service in the generated modules of chat4all/v1."""
    names: set[str] = set()
    for info in pkgutil.iter_modules(chat4all.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"chat4all.v1.{info.name}")
            names.update(service.full_name for service in module.DESCRIPTOR.services_by_name.values())
    return names


def check_services(names: Sequence[str]) -> None:
    """Raise MissingService unless `names` are the declared services, each once."""
    declared, counts = declared_services(), Counter(names)
    problems = [
        f"{what}: {', '.join(sorted(which))}"
        for what, which in (
            ("not served", declared - counts.keys()),
            ("not declared", counts.keys() - declared),
            ("registered twice", {name for name, n in counts.items() if n > 1}),
        )
        if which
    ]
    if problems:
        raise MissingService(
            "the API's services do not match the protos in chat4all/v1: " + "; ".join(problems)
        )


def build_server(
    deps: ApiDeps, registrations: list[ServiceRegistration]
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with every service, health and reflection, not yet bound or started."""
    settings = deps.settings
    server = grpc.aio.server(
        interceptors=[
            # Only while tracing is on: off, a call pays nothing for it.
            *([TracingInterceptor()] if tracing.ENABLED else []),
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


async def serve(
    settings: Settings, *, services: Sequence[ServiceFactory], ready: Callable[[int], None] | None = None
) -> None:
    """Run the API with `services` until SIGTERM/SIGINT, then let in-flight calls finish (api_grace_seconds).

    Refuses to start with the settings api.startup names (MissingSecret, UnsafeSettings) and with
    services that are not exactly the protos' (MissingService).
    """
    check_settings(settings)
    deps = build_deps(settings)
    registrations = [registration(deps) for registration in services]
    try:
        check_services([reg.name for reg in registrations])
    except MissingService:
        await deps.close()
        raise
    server, health_servicer = build_server(deps, registrations)
    address = f"{settings.api_host}:{settings.api_port}"
    tls = load_server_tls(settings=settings)
    try:
        port = (
            server.add_secure_port(address, grpc_server_credentials(tls))
            if tls
            else server.add_insecure_port(address)
        )
    except RuntimeError:
        raise PortInUse(f"cannot listen on {address}: is another API running there?") from None
    try:
        metrics.serve_metrics(settings.api_metrics_port, settings.api_host)
    except OSError:
        raise PortInUse(
            f"cannot serve metrics on {settings.api_host}:{settings.api_metrics_port}: port in use"
        ) from None
    for reg in registrations:
        if hasattr(reg.servicer, "start"):
            await reg.servicer.start()
    await server.start()
    names = [reg.name for reg in registrations]
    watcher = asyncio.create_task(watch_dependencies(deps, health_servicer, names))
    target = scrape_targets.register(
        settings.targets_dir,
        job="chat4all-api",
        address=scrape_targets.reachable_address(settings.api_host, settings.api_metrics_port),
    )
    pruner = asyncio.create_task(
        scrape_targets.prune_every(settings.targets_dir, seconds=settings.metrics_targets_prune_seconds)
    )
    logger.info(
        "API listening on %s:%s (%s; metrics on :%s), services: %s",
        settings.api_host,
        port,
        "TLS" if tls else "plain TCP",
        settings.api_metrics_port,
        ", ".join(names),
    )
    if ready is not None:
        ready(port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        scrape_targets.unregister(target)
        pruner.cancel()
    logger.info("shutting down: %.1f s for in-flight calls", settings.api_grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    watcher.cancel()
    await server.stop(settings.api_grace_seconds)
    for reg in registrations:
        if hasattr(reg.servicer, "stop"):
            await reg.servicer.stop()
    await deps.close()
    logger.info("API stopped")
