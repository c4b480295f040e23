"""What each step proved: named checkpoints with their evidence, and the machine-readable summary of a run."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(kw_only=True)
class Checkpoint:
    """One claim a step checks on the running system (``ok``), what it saw (``detail``) and the numbers (``data``)."""

    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class StepResult:
    """A step's checkpoints, how long it took, and the error that ended it early, if any."""

    number: int
    name: str
    title: str
    checkpoints: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the step ran to its end and every checkpoint held."""
        return self.error is None and bool(self.checkpoints) and all(c.ok for c in self.checkpoints)

    def check(self, name: str, ok: bool, detail: str, **data: Any) -> Checkpoint:
        """Record a checkpoint of this step and return it."""
        checkpoint = Checkpoint(name=name, ok=bool(ok), detail=detail, data=data)
        self.checkpoints.append(checkpoint)
        return checkpoint


@dataclass(kw_only=True)
class DemoSummary:
    """Every step's result; ``ok`` when each step that ran held all its checkpoints."""

    fast: bool
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the platform could not be found or started
    started: list[str] = field(default_factory=list)  # what the demo started (and stopped again)

    @property
    def ok(self) -> bool:
        """True when the platform was there, at least one step ran and every step is ok."""
        return self.error is None and bool(self.steps) and all(s.ok for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        """The summary as plain JSON data (the `--json` output)."""
        return {
            "ok": self.ok,
            "fast": self.fast,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "started": self.started,
            "steps": [{**asdict(s), "ok": s.ok, "seconds": round(s.seconds, 1)} for s in self.steps],
        }


def write_summary(summary: DemoSummary, target: str) -> None:
    """Write the summary as JSON to the file ``target``, or to stdout when it is ``-``."""
    text = json.dumps(summary.to_json(), indent=2, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    Path(target).write_text(text + "\n")
