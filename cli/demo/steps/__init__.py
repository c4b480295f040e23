"""The demo's steps in the order they run; each module has NAME, TITLE, TEACHES and ``run(ctx, result)``."""

from __future__ import annotations

from cli.demo.steps import failover, first_message, outage, recovery, scale_out

STEPS = (first_message, scale_out, failover, recovery, outage)
