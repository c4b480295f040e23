"""A worker's /metrics as a Prometheus file service-discovery target while it runs (chat4all/scrape_targets.py)."""

from __future__ import annotations

import atexit

import faust

from chat4all import scrape_targets
from chat4all.settings import Settings


def install_scrape_target(app: faust.App, settings: Settings, *, role: str) -> None:
    """Register the worker's web address once the app runs, prune dead processes' targets, unregister at exit."""

    @app.task
    async def scrape_target() -> None:
        """Write the target file, then prune every metrics_targets_prune_seconds until the worker stops."""
        path = scrape_targets.register(
            settings.targets_dir,
            job="chat4all-worker",
            address=scrape_targets.reachable_address(settings.web_host, settings.web_port),
            labels={"role": role, "app_id": settings.app_id},
        )
        # Also at interpreter exit: faust may stop without cancelling its tasks.
        atexit.register(scrape_targets.unregister, path)
        try:
            await scrape_targets.prune_every(
                settings.targets_dir, seconds=settings.metrics_targets_prune_seconds
            )
        finally:
            scrape_targets.unregister(path)
