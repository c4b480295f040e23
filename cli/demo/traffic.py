"""Steady traffic from a background thread: messages keep flowing while a step kills or starts workers."""

from __future__ import annotations

import itertools
import threading
import time

from cli.demo.cast import Cast, Person, Sent


class SteadySender:
    """Sends ``count`` messages at about ``rate`` per second, round robin over (sender, conversation) pairs."""

    def __init__(
        self, cast: Cast, *, routes: list[tuple[Person, str]], count: int, rate: float, label: str
    ) -> None:
        self._cast = cast
        self._routes = routes
        self._count = count
        self._interval = 1.0 / rate
        self._label = label
        self.sent: list[Sent] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"demo-sender-{label}", daemon=True)

    def start(self) -> SteadySender:
        """Start sending in the background; returns self."""
        self._thread.start()
        return self

    def _run(self) -> None:
        routes = itertools.cycle(self._routes)
        started = time.monotonic()
        for n in range(self._count):
            if self._stop.is_set():
                return
            sender, conversation_id = next(routes)
            try:
                self.sent.append(self._cast.send(sender, conversation_id, f"{self._label} #{n + 1}"))
            except Exception as exc:  # the step reports it: a refused send is not a pipeline loss
                self.errors.append(exc)
                return
            # Paced against the start, so slow calls do not stretch the whole run.
            delay = started + (n + 1) * self._interval - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    @property
    def done(self) -> bool:
        """True once every message is sent (or sending stopped on an error)."""
        return not self._thread.is_alive()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the sending to finish; then stop it."""
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(5)
