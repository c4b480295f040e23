"""The demo's voice: step headers, what happens, the code that does it, the inspector pages that show it, checkpoints."""

from __future__ import annotations

import time

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule

from cli.demo.checkpoints import Checkpoint


class Narrator:
    """Prints the narration on a rich console; ``pause`` seconds after each explanation, Enter between steps with ``step``."""

    def __init__(self, *, console: Console, pause: float, step: bool) -> None:
        self.console = console
        self._pause = pause
        self._step = step

    def step(self, number: int, title: str, *, teaches: str) -> None:
        """The header of step ``number``: its title and what it teaches."""
        self.console.print()
        self.console.print(Rule(f"[bold]Step {number}: {escape(title)}"))
        self.console.print(Panel(escape(teaches), title="what this shows", title_align="left", expand=True))

    def say(self, text: str) -> None:
        """One sentence of narration (rich markup allowed)."""
        self.console.print(text)

    def action(self, text: str) -> None:
        """Something the demo does now."""
        self.console.print(f"[cyan]→[/] {text}")

    def code(self, *paths: str) -> None:
        """The files whose code does what is shown."""
        self.console.print("[dim]code:[/] " + ", ".join(f"[magenta]{escape(p)}[/]" for p in paths))

    def inspector(self, label: str, url: str) -> None:
        """A page of the table inspector (or another worker page) that shows this, as a link."""
        self.console.print(
            f"[dim]open:[/] {escape(label)} [link={url}][blue underline]{escape(url)}[/][/link]"
        )

    def show(self, renderable: RenderableType) -> None:
        """A table or panel."""
        self.console.print(renderable)

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        """A checkpoint's verdict and what it saw."""
        mark = "[bold green]✔[/]" if checkpoint.ok else "[bold red]✘[/]"
        self.console.print(f"{mark} [bold]{escape(checkpoint.name)}[/]: {escape(checkpoint.detail)}")

    def error(self, text: str) -> None:
        """A step ended early."""
        self.console.print(f"[bold red]step failed:[/] {escape(text)}")

    def pause(self, factor: float = 1.0) -> None:
        """Leave the audience time to read (nothing with --fast)."""
        if self._pause > 0:
            time.sleep(self._pause * factor)

    def between_steps(self) -> None:
        """With --step: wait for Enter before the next step."""
        if self._step:
            self.console.input("[dim]press Enter for the next step…[/]")
