"""`chat4all settings`: the settings table (env var, default, meaning), as printed in the README."""

from __future__ import annotations

import click

from chat4all.settings import REPO_ROOT, Settings


def settings_markdown() -> str:
    """A Markdown table of every setting: its environment variable, default and description."""
    rows = ["| Environment variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = "(local-stack default)"
        elif default is None:
            default = "(unset)"
        else:
            default = str(default).replace(str(REPO_ROOT), ".")
        rows.append(f"| `CHAT4ALL_{name.upper()}` | `{default}` | {field.description or ''} |")
    return "\n".join(rows)


@click.command("settings")
def settings_table() -> None:
    """Print every CHAT4ALL_* setting with its default, as a Markdown table."""
    click.echo(settings_markdown())
