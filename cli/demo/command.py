"""`chat4all demo`: the click command (options, console, exit status and the JSON summary)."""

from __future__ import annotations

import logging
import sys

import click

# The narration is the demo's output: the clients' own chatter (aiokafka's group joins, the
# Cassandra driver's server warnings) would interleave with it.
_QUIET_LOGGERS = {"aiokafka": logging.WARNING, "cassandra": logging.ERROR}


@click.command("demo")
@click.option(
    "--fast",
    is_flag=True,
    help="Short waits, fast simulated receipts in the workers it starts: done in under two minutes once the stack is up.",
)
@click.option("--step", "step_mode", is_flag=True, help="Wait for Enter between steps (for a lecture).")
@click.option(
    "--json",
    "json_target",
    metavar="PATH",
    default=None,
    help="Write every step's checkpoints as JSON to PATH ('-': stdout, and the narration goes to stderr).",
)
def demo(fast: bool, step_mode: bool, json_target: str | None) -> None:
    """A narrated live demonstration on the local stack: receipts, scale-out, SIGKILL failover, recovery, outage.

    Runs against the platform `make run` started (the worker at CHAT4ALL_WEB_PORT, the API at
    CHAT4ALL_API_PORT) and starts what is missing, the stack included; it starts the extra
    workers it needs and stops everything it started. CHAT4ALL_APP_ID, CHAT4ALL_TOPIC_PREFIX and
    the ports give a run of its own. Exit status 0 when every checkpoint held.
    """
    from rich.console import Console

    from chat4all.settings import get_settings
    from cli.demo.checkpoints import write_summary
    from cli.demo.narration import Narrator
    from cli.demo.pace import pace_for
    from cli.demo.runner import run_demo

    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    settings = get_settings()
    pace = pace_for(fast=fast)
    console = Console(stderr=json_target == "-", highlight=False)
    narrator = Narrator(console=console, pause=pace.pause, step=step_mode)
    summary = run_demo(settings, pace=pace, narrator=narrator)
    held = sum(1 for s in summary.steps for c in s.checkpoints if c.ok)
    total = sum(len(s.checkpoints) for s in summary.steps)
    verdict = (
        "[bold green]every checkpoint held[/]"
        if summary.ok
        else "[bold red]the demo did not prove everything[/]"
    )
    console.print(f"\n{verdict}: {held} of {total} checkpoints in {summary.seconds:.0f} s")
    if json_target is not None:
        write_summary(summary, json_target)
    sys.exit(0 if summary.ok else 1)
