"""`chat4all demo`'s verdicts: a step holds only with every checkpoint, the summary is JSON, a breaker trail closes after a probe."""

from __future__ import annotations

import json

from cli.demo.checkpoints import DemoSummary, StepResult, write_summary
from cli.demo.steps.outage import closed_after_probe


def test_a_step_holds_only_when_it_ran_to_its_end_with_every_checkpoint_held():
    step = StepResult(number=1, name="first-message", title="t")
    assert not step.ok  # no checkpoint: nothing proved
    step.check("stored once", True, "1 row", rows=1)
    assert step.ok
    step.check("receipt reached READ", False, "stuck at SENT")
    assert not step.ok
    errored = StepResult(number=2, name="scale-out", title="t")
    errored.check("B joined the group", True, "yes")
    errored.error = "PlatformError: worker B never ready"
    assert not errored.ok


def test_the_summary_is_ok_only_without_a_platform_error_and_with_every_step_ok(tmp_path):
    step = StepResult(number=1, name="first-message", title="t")
    step.check("stored once", True, "1 row", rows=1)
    summary = DemoSummary(fast=True, steps=[step], seconds=12.34, started=["api 127.0.0.1:1"])
    assert summary.ok
    write_summary(summary, str(tmp_path / "s.json"))
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["ok"] is True and data["seconds"] == 12.3 and data["started"] == ["api 127.0.0.1:1"]
    (written,) = data["steps"]
    assert written["name"] == "first-message" and written["ok"] is True
    assert written["checkpoints"] == [
        {"name": "stored once", "ok": True, "detail": "1 row", "data": {"rows": 1}}
    ]
    assert not DemoSummary(fast=True, steps=[step], error="PlatformError: no stack").ok
    assert not DemoSummary(fast=True).ok


def test_a_breaker_recovered_when_a_half_open_probe_closed_it_after_it_opened():
    assert closed_after_probe(["OPEN", "HALF_OPEN", "CLOSED"])
    assert closed_after_probe(["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"])
    assert not closed_after_probe(["OPEN", "CLOSED"])  # no probe seen
    assert not closed_after_probe(["OPEN", "HALF_OPEN", "OPEN"])  # still failing
    assert not closed_after_probe(["CLOSED", "HALF_OPEN"])
    assert not closed_after_probe([])
