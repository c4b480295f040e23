"""`chat4all stack up|status|down`: the local stack of real servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from chat4all.settings import Settings, get_settings
from cli.stack import chromium, manager, tools
from cli.stack.exceptions import StackError

console = Console(stderr=True)


@click.group()
def stack() -> None:
    """Run Kafka, Cassandra, S3Proxy, Redis and Jaeger on 127.0.0.1 (binaries and data under CHAT4ALL_STACK_DIR)."""


@stack.command("bootstrap")
def bootstrap_cmd() -> None:
    """Apply schema, topics and bucket on already running servers (e.g. in docker-compose)."""
    manager.prepare_platform(get_settings(), on_event=lambda msg: console.print(f"[green]•[/] {msg}"))


@stack.command()
def install() -> None:
    """Fetch what is missing: the servers' and Kafka tools' jars (Maven), redis-server, prometheus and Chromium (apt), Jaeger (built with Go)."""
    try:
        settings = get_settings()
        manager.install(settings)
        tools.install(settings)
        chromium.install()
    except StackError as exc:
        console.print(f"[red]stack install failed:[/] {exc}")
        sys.exit(1)


@stack.command()
@click.option(
    "--started-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the names of the servers this call started (for `down --only-file`).",
)
def up(started_file: Path | None) -> None:
    """Start what is not running, wait until every server answers, apply schema, topics and bucket."""
    settings = get_settings()
    started: list[str] = []

    def on_start(name: str) -> None:
        started.append(name)
        if started_file:  # written as we go, so a failed `up` can still be cleaned up
            started_file.write_text("\n".join(started) + "\n")

    try:
        manager.up(settings, on_event=lambda msg: console.print(f"[green]•[/] {msg}"), on_start=on_start)
    except StackError as exc:
        console.print(f"[red]stack up failed:[/] {exc}")
        sys.exit(1)
    finally:
        if started_file and not started:
            started_file.write_text("")
    _print_status()


@stack.command()
def status() -> None:
    """Show each server's port, pid and health. Exit code 0 only when all are healthy."""
    states = _print_status()
    sys.exit(0 if all(s.healthy for s in states) else 1)


@stack.command()
@click.option("--wipe", is_flag=True, help="Also delete the servers' data (jars are kept).")
@click.option(
    "--only-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Stop only the servers named in this file (written by `up --started-file`).",
)
def down(wipe: bool, only_file: Path | None) -> None:
    """Stop exactly the processes `up` started (by pid file); data is kept unless --wipe."""
    only = set(only_file.read_text().split()) if only_file and only_file.exists() else None
    if only_file and only is None:
        only = set()
    for name, pid in manager.down(get_settings(), wipe=wipe, only=only).items():
        console.print(f"{name}: {'stopped pid ' + str(pid) if pid else 'was not running'}")


# The tools parse their own options: everything after the tool's name is theirs.
PASS_THROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False}


@stack.command("tool", context_settings=PASS_THROUGH)
@click.argument("name", type=click.Choice(sorted(tools.TOOLS)))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def tool_cmd(name: str, args: tuple[str, ...]) -> None:
    """Run a Kafka tool (kafka-consumer-groups, kafka-topics, ...) or nodetool against the local stack."""
    _run(lambda settings: tools.tool_command(settings, name=name, args=args))


@stack.command("cqlsh", context_settings=PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def cqlsh_cmd(args: tuple[str, ...]) -> None:
    """Open cqlsh on the local Cassandra in the platform's keyspace (extra arguments go to cqlsh, e.g. -e)."""
    _run(lambda settings: tools.cqlsh_command(settings, args))


def _run(build: Callable[[Settings], list[str]]) -> None:
    try:
        command = build(get_settings())
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        sys.exit(1)
    # The tool owns the terminal; its exit code is the command's.
    sys.exit(subprocess.run(command).returncode)


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
