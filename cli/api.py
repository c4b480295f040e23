"""`chat4all api`: run the gRPC API server."""

from __future__ import annotations

import asyncio
import logging

import click

logger = logging.getLogger(__name__)


@click.command("api")
@click.option("--host", default=None, help="Bind host (default: CHAT4ALL_API_HOST).")
@click.option("--port", type=int, default=None, help="gRPC port (default: CHAT4ALL_API_PORT, 50051).")
@click.option("--metrics-port", type=int, default=None, help="Prometheus port (default: CHAT4ALL_API_METRICS_PORT).")
def api(host: str | None, port: int | None, metrics_port: int | None) -> None:
    """Run the gRPC API (auth, users, conversations, messages, files) until SIGTERM."""
    from api.server import PortInUse, serve
    from api.startup import UnsafeSettings
    from api.tokens import MissingSecret
    from chat4all.settings import get_settings

    overrides = {k: v for k, v in {"api_host": host, "api_port": port, "api_metrics_port": metrics_port}.items() if v is not None}
    settings = get_settings().model_copy(update=overrides)
    try:
        asyncio.run(serve(settings))
    except (MissingSecret, UnsafeSettings, PortInUse) as exc:
        raise click.ClickException(str(exc)) from None
