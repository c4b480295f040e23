"""`chat4all worker`: start a Faust worker of one role (router, connectors, status or all)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

logger = logging.getLogger(__name__)


@click.command("worker")
@click.option(
    "--role",
    type=click.Choice(["router", "connectors", "status", "all"]),
    default="all",
    show_default=True,
    help="Which agents this worker runs; workers of different roles share one consumer group.",
)
@click.option(
    "--web-port",
    type=int,
    default=None,
    help="Port of this worker's web server (/health, /metrics, /table, the inspector under /ui/). Default CHAT4ALL_WEB_PORT.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="This worker's RocksDB folder (one per worker: RocksDB takes a lock). Default CHAT4ALL_DATA_DIR.",
)
@click.option("--loglevel", default=None, help="Log level (default CHAT4ALL_LOG_LEVEL).")
def worker(role: str, web_port: int | None, data_dir: Path | None, loglevel: str | None) -> None:
    """Run a Faust worker until SIGTERM/SIGINT (graceful: in-flight events finish, offsets are committed)."""
    # The flags are settings: every part of the worker reads the one settings object.
    if web_port is not None:
        os.environ["CHAT4ALL_WEB_PORT"] = str(web_port)
    if data_dir is not None:
        os.environ["CHAT4ALL_DATA_DIR"] = str(data_dir.resolve())
    from chat4all import tracing
    from chat4all.logs import setup_logging
    from chat4all.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    setup_logging(loglevel)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tracing.setup(settings, service_name=tracing.WORKER_SERVICE, attributes={"chat4all.worker.role": role})

    import asyncio

    import faust

    from agents.worker import build_worker
    from streams.bootstrap import ensure_changelog_topics

    worker_app = build_worker(settings, role=role)  # type: ignore[arg-type]
    asyncio.run(ensure_changelog_topics(worker_app.app, settings))
    logger.info(
        "starting %s worker app_id=%s web_port=%d data_dir=%s guarantee=%s",
        role,
        settings.app_id,
        settings.web_port,
        settings.data_dir,
        settings.processing_guarantee,
    )
    faust.Worker(
        worker_app.app,
        loglevel=loglevel or settings.log_level,
        override_logging=False,  # keep Chat4All's log format (chat4all/logs.py)
    ).execute_from_commandline()
