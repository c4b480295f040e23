"""A live display: re-render a view of the running system until it reports done, or a timeout."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, RenderableType
from rich.live import Live


def watch(
    console: Console,
    render: Callable[[], tuple[RenderableType, bool]],
    *,
    timeout: float,
    interval: float = 0.25,
) -> bool:
    """Refresh ``render()`` (a renderable and whether it is done) until done or ``timeout`` s; True when done."""
    deadline = time.monotonic() + timeout
    view, done = render()
    with Live(view, console=console, refresh_per_second=8, transient=False) as live:
        while not done and time.monotonic() < deadline:
            time.sleep(interval)
            view, done = render()
            live.update(view)
    if not console.is_terminal:
        console.line()  # Live leaves the cursor after its last line when it is not a terminal
    return done
