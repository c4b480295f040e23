"""The `chat4all` command: one click group whose subcommands load lazily from their own modules."""

from __future__ import annotations

import importlib

import click

from chat4all.logs import setup_logging

# name -> "module:attribute". Each area keeps its commands in its own module so that
# `chat4all stack status` does not import faust, grpc or the cassandra driver.
COMMANDS: dict[str, str] = {
    "stack": "chat4all.cli.stack:stack",
    "settings": "chat4all.cli.settings_table:settings_table",
    "watch": "chat4all.cli.events:watch",
    "worker": "chat4all.cli.worker:worker",
    "dlq": "chat4all.cli.dlq:dlq",
    "api": "chat4all.cli.api:api",
    "register": "chat4all.cli.client:register",
    "login": "chat4all.cli.client:login",
    "logout": "chat4all.cli.client:logout",
    "me": "chat4all.cli.client:me",
    "conversation": "chat4all.cli.client:conversation",
    "send": "chat4all.cli.client:send",
    "history": "chat4all.cli.client:history",
    "read": "chat4all.cli.client:read",
    "upload": "chat4all.cli.files:upload",
    "download": "chat4all.cli.files:download",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
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
