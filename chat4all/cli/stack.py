"""`chat4all stack up|status|down`: the local stack of real servers."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from chat4all.settings import get_settings
from chat4all.stack import manager
from chat4all.stack.exceptions import StackError

console = Console(stderr=True)


@click.group()
def stack() -> None:
    """Run Kafka, Cassandra, S3Proxy and Redis on 127.0.0.1 (jars and data under CHAT4ALL_STACK_DIR)."""


@stack.command()
def up() -> None:
    """Start what is not running, wait until every server answers, apply schema, topics and bucket."""
    settings = get_settings()
    try:
        manager.up(settings, on_event=lambda msg: console.print(f"[green]•[/] {msg}"))
    except StackError as exc:
        console.print(f"[red]stack up failed:[/] {exc}")
        sys.exit(1)
    _print_status()


@stack.command()
def status() -> None:
    """Show each server's port, pid and health. Exit code 0 only when all are healthy."""
    states = _print_status()
    sys.exit(0 if all(s.healthy for s in states) else 1)


@stack.command()
@click.option("--wipe", is_flag=True, help="Also delete the servers' data (jars are kept).")
def down(wipe: bool) -> None:
    """Stop exactly the processes `up` started (by pid file); data is kept unless --wipe."""
    for name, pid in manager.down(get_settings(), wipe=wipe).items():
        console.print(f"{name}: {'stopped pid ' + str(pid) if pid else 'was not running'}")


def _print_status() -> list[manager.ServerState]:
    states = manager.status(get_settings())
    table = Table(title="Chat4All local stack")
    for col in ("server", "port", "pid", "state"):
        table.add_column(col)
    colors = {"healthy": "green", "unhealthy": "yellow", "stopped": "red"}
    for s in states:
        table.add_row(s.name, str(s.port), str(s.pid or "-"), f"[{colors[s.state]}]{s.state}[/]")
    Console().print(table)
    return states
