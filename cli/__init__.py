"""The `chat4all` command, the entry point (it may import every package; no product package imports it): one click group whose subcommands load lazily."""

from __future__ import annotations

import importlib

import click

from chat4all.logs import setup_logging

# name -> "module:attribute". Each area keeps its commands in its own module so that
# `chat4all stack status` does not import faust, grpc or the cassandra driver.
COMMANDS: dict[str, str] = {
    "stack": "cli.stack.commands:stack",
    "settings": "cli.settings_table:settings_table",
    "watch": "cli.events:watch",
    "worker": "cli.worker:worker",
    "dlq": "cli.dlq:dlq",
    "demo": "cli.demo.command:demo",
    "api": "cli.api:api",
    "register": "cli.client:register",
    "login": "cli.client:login",
    "logout": "cli.client:logout",
    "me": "cli.client:me",
    "conversation": "cli.client:conversation",
    "send": "cli.client:send",
    "history": "cli.client:history",
    "read": "cli.client:read",
    "upload": "cli.files:upload",
    "download": "cli.files:download",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand's name, sorted (none is imported for it)."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand ``cmd_name``, importing its module now; None for an unknown name."""
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="chat4all")
def main() -> None:
    """Chat4All: distributed messaging on Kafka, Faust, Cassandra, S3 and Redis."""
    setup_logging()
