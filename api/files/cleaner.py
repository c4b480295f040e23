"""The upload cleaner: expired sessions' multipart uploads aborted, their staging objects and rows deleted."""

from __future__ import annotations

import asyncio
import logging

from api.files.sessions import COMPLETE, EXPIRED
from api.files.uploader import Uploader
from chat4all.clock import utc_now

logger = logging.getLogger(__name__)


async def cleanup_expired(uploader: Uploader) -> int:
    """Abort expired sessions' multipart uploads, delete their staging data and rows; returns how many."""
    sessions = uploader.sessions
    now = utc_now()
    cleaned = 0
    async for page in sessions.scan():  # a page at a time, never the whole table
        for session in page:
            if session.state == COMPLETE:
                if session.expired(now):
                    await sessions.delete(session)
                    cleaned += 1
                continue
            if session.state != EXPIRED:
                if not session.expired(now):
                    continue
                if uploader.is_streaming(session):
                    continue  # a stream is on it right now
                # The conditional write loses if a stream extended the session meanwhile.
                if not await sessions.mark_expired(session):
                    continue
            await uploader.discard(session)
            cleaned += 1
    return cleaned


async def run_cleaner(uploader: Uploader, *, interval_seconds: float) -> None:
    """Run ``cleanup_expired`` every ``interval_seconds`` until cancelled; errors are logged, not fatal."""
    while True:
        try:
            cleaned = await cleanup_expired(uploader)
            if cleaned:
                logger.info("cleaned up %d expired upload sessions", cleaned)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an outage: try again next round
            logger.warning("upload clean-up failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(interval_seconds)
