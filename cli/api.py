"""`chat4all api`: run the gRPC API server with every service of the API process."""

from __future__ import annotations

import asyncio

import click

from api.registration import ServiceFactory
from api.server import MissingService, PortInUse, serve
from api.services import auth, conversations, files, messages, users
from api.startup import UnsafeSettings
from api.tokens import MissingSecret
from chat4all import tracing
from chat4all.settings import get_settings
from gateway import service as events

# What the API process serves, one static list: a missing or misnamed module fails at import, and a
# service of the protos left out (or one the protos do not declare) fails start-up (MissingService).
SERVICES: tuple[ServiceFactory, ...] = (
    auth.registration,
    users.registration,
    conversations.registration,
    messages.registration,
    files.registration,
    events.registration,  # the realtime gateway's EventService and its WebSocket server
)


@click.command("api")
@click.option("--host", default=None, help="Bind host (default: CHAT4ALL_API_HOST).")
@click.option("--port", type=int, default=None, help="gRPC port (default: CHAT4ALL_API_PORT, 50051).")
@click.option(
    "--metrics-port", type=int, default=None, help="Prometheus port (default: CHAT4ALL_API_METRICS_PORT)."
)
def api(host: str | None, port: int | None, metrics_port: int | None) -> None:
    """Run the gRPC API (auth, users, conversations, messages, files) until SIGTERM."""
    overrides = {
        k: v
        for k, v in {"api_host": host, "api_port": port, "api_metrics_port": metrics_port}.items()
        if v is not None
    }
    settings = get_settings().model_copy(update=overrides)
    if tracing.setup(settings, service_name=tracing.API_SERVICE):
        # Redis calls inside a traced call become its child spans (commands only, never values).
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
    try:
        asyncio.run(serve(settings, services=SERVICES))
    except (MissingSecret, UnsafeSettings, PortInUse, MissingService) as exc:
        raise click.ClickException(str(exc)) from None
