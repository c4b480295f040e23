"""Runs the demo: finds or starts the platform, runs each step with its checkpoints, cleans up what it started."""

from __future__ import annotations

import logging
import time

from chat4all.cassandra import connect
from chat4all.settings import Settings
from cli.demo.cast import Cast
from cli.demo.checkpoints import DemoSummary, StepResult
from cli.demo.context import DemoContext
from cli.demo.ledger import MessageLedger
from cli.demo.narration import Narrator
from cli.demo.pace import Pace
from cli.demo.platform import Platform
from cli.demo.steps import STEPS

logger = logging.getLogger(__name__)


def run_demo(settings: Settings, *, pace: Pace, narrator: Narrator) -> DemoSummary:
    """Every step in order; a step that raises ends the run (the next ones build on it), failed checkpoints do not."""
    started = time.monotonic()
    summary = DemoSummary(fast=pace.fast)
    platform = Platform(
        settings, worker_env=pace.worker_env, worker_timeout=pace.worker_timeout, say=narrator.action
    )
    session = cast = None
    try:
        platform.ensure()
        session = connect(settings)
        cast = Cast(target=platform.api_target, ca_file=settings.tls_ca_file)
        ctx = DemoContext(
            settings=settings,
            pace=pace,
            narrator=narrator,
            platform=platform,
            cast=cast,
            ledger=MessageLedger(session),
        )
        for number, step in enumerate(STEPS, start=1):
            if number > 1:
                narrator.between_steps()
            result = StepResult(number=number, name=step.NAME, title=step.TITLE)
            summary.steps.append(result)
            narrator.step(number, step.TITLE, teaches=step.TEACHES)
            t0 = time.monotonic()
            try:
                step.run(ctx, result)
            except Exception as exc:
                logger.debug("demo step %s failed", step.NAME, exc_info=True)
                result.error = f"{type(exc).__name__}: {exc}"
                narrator.error(result.error)
            finally:
                result.seconds = time.monotonic() - t0
            if result.error is not None:
                break
    except Exception as exc:
        summary.error = f"{type(exc).__name__}: {exc}"
        narrator.error(summary.error)
    finally:
        if cast is not None:
            cast.close()
        if session is not None:
            session.cluster.shutdown()
        summary.started = platform.started()
        narrator.action("cleaning up what the demo started: " + (", ".join(summary.started) or "nothing"))
        platform.close(keep_logs=not summary.ok)
        summary.seconds = time.monotonic() - started
    return summary
