"""`chat4all demo --fast` end to end on an app id, topic prefix and ports of its own: every step's checkpoints hold."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chat4all.settings import REPO_ROOT, Settings
from cli.demo.group import describe_group
from cli.harness.isolation import new_app_id
from cli.harness.ports import free_port
from cli.harness.topics import delete_topics
from cli.harness.waiting import wait_until

pytestmark = pytest.mark.integration

CHAT4ALL = str(REPO_ROOT / ".venv" / "bin" / "chat4all")
STEPS = ["first-message", "scale-out", "failover", "recovery", "outage"]
# The contract of --fast is two minutes once the stack is up; the subprocess gets a margin on top.
FAST_LIMIT_SECONDS = 120
RUN_TIMEOUT = 300


class DemoRun:
    """One finished run: its exit status, output, JSON summary, and the settings it ran on."""

    def __init__(
        self,
        proc: subprocess.CompletedProcess[str],
        summary: dict[str, Any],
        env: dict[str, str],
        narration: Path,
    ):
        self.proc = proc
        self.summary = summary
        self.env = env
        self.narration = narration

    def step(self, name: str) -> dict[str, Any]:
        """The summary of step ``name``."""
        return next(s for s in self.summary["steps"] if s["name"] == name)

    def checkpoint(self, step: str, name: str) -> dict[str, Any]:
        """Checkpoint ``name`` of ``step``; fails with the step's checkpoints when it is absent."""
        checkpoints = {c["name"]: c for c in self.step(step)["checkpoints"]}
        assert name in checkpoints, f"{step} has no checkpoint {name!r}: {list(checkpoints)}"
        return checkpoints[name]

    def held(self, step: str, name: str) -> dict[str, Any]:
        """Checkpoint ``name`` of ``step``, asserted to have held; returns its data."""
        checkpoint = self.checkpoint(step, name)
        assert checkpoint["ok"], f"{step}: {name}: {checkpoint['detail']} (narration: {self.narration})"
        return checkpoint["data"]


@pytest.fixture(scope="module")
def demo(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`chat4all demo --fast --json` run once for the module, on its own app id, topics and ports."""
    app_id = new_app_id("c4a-demo")
    env = {
        **os.environ,
        "CHAT4ALL_APP_ID": app_id,
        "CHAT4ALL_TOPIC_PREFIX": f"{app_id}.",
        # Nothing runs on these: the demo starts its own API and first worker.
        "CHAT4ALL_WEB_PORT": str(free_port()),
        "CHAT4ALL_API_PORT": str(free_port()),
        "CHAT4ALL_API_METRICS_PORT": str(free_port()),
        "CHAT4ALL_WEBSOCKET_PORT": str(free_port()),
    }
    summary_path = Path(tmp_path_factory.mktemp("demo")) / "summary.json"
    try:
        proc = subprocess.run(
            [CHAT4ALL, "demo", "--fast", "--json", str(summary_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=str(REPO_ROOT),
        )
    finally:
        asyncio.run(delete_topics(stack, [f"{app_id}.", f"{app_id}-"]))
    # The narration, kept as the run's artefact beside its summary.
    (summary_path.parent / "narration.txt").write_text(proc.stdout + proc.stderr)
    assert summary_path.exists(), (
        f"no summary; exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return DemoRun(proc, json.loads(summary_path.read_text()), env, summary_path.parent / "narration.txt")


def test_the_fast_demo_runs_every_step_and_exits_0_within_two_minutes(demo):
    assert [s["name"] for s in demo.summary["steps"]] == STEPS
    failed = [(s["name"], c["name"]) for s in demo.summary["steps"] for c in s["checkpoints"] if not c["ok"]]
    assert not failed and demo.summary["error"] is None, f"{failed} (narration: {demo.narration})"
    assert demo.summary["ok"] is True and demo.proc.returncode == 0, demo.proc.stderr[-4000:]
    assert demo.summary["seconds"] < FAST_LIMIT_SECONDS


def test_step_1_the_message_receipt_goes_sent_delivered_read(demo):
    data = demo.held("first-message", "receipt reached READ")
    assert data["seen"][-1] == "READ" and data["seen"][0] in ("SENT", "DELIVERED", "READ")
    assert demo.held("first-message", "stored once")["rows"] == 1


def test_step_2_the_second_worker_takes_partitions_from_the_first(demo):
    joined = demo.held("scale-out", "B joined the group")
    assert joined["members"] == 2 and joined["b_active"] > 0
    moved = demo.held("scale-out", "partitions moved from A to B")
    assert moved["a_after"] < moved["a_before"]
    demo.held("scale-out", "every partition has exactly one owner")


def test_step_3_nothing_is_lost_or_stored_twice_after_the_sigkill(demo):
    flow = demo.held("failover", "sent across the kill")
    assert 0 < flow["before_kill"] < flow["sent"]  # messages went out before and after the kill
    assert flow["routed_by_b"] > 0  # B died mid-flow, with messages of its own partitions routed
    demo.held("failover", "the survivor took over")
    assert demo.held("failover", "nothing lost")["missing"] == 0
    assert demo.held("failover", "nothing stored twice")["duplicated"] == 0
    assert demo.held("failover", "every receipt READ")["read"] == flow["sent"]


def test_step_4_the_wiped_worker_recovers_its_tables_and_the_pending_reads_fire(demo):
    pending = demo.held("recovery", "READs pending at the kill")["pending"]
    assert pending > 0
    assert demo.held("recovery", "B restarted empty and owns partitions again")["wiped_bytes"] > 0
    tables = demo.held("recovery", "B's tables rebuilt from the changelogs")["tables"]
    assert tables["whatsapp-schedule"]["with_changelog"] > 0
    assert demo.held("recovery", "the pending READs fired")["read"] == pending
    resent = demo.held("recovery", "nothing sent again")
    assert resent["resent"] <= resent["not_committed"]  # at least once: only what was not committed


def test_step_5_the_breaker_opens_half_opens_and_closes_and_the_backlog_drains(demo):
    opened_on = demo.held("outage", "breaker opened")["opened_on"]
    assert opened_on
    trails = demo.held("outage", "OPEN -> HALF_OPEN -> CLOSED")["transitions"]
    assert all(trails[w][-1] == "CLOSED" for w in opened_on)
    demo.held("outage", "breakers closed again")
    drained = demo.held("outage", "backlog drained, nothing lost")
    assert drained["missing"] == 0 and drained["duplicated"] == 0 and drained["dead_lettered"] == 0


def _listening(address: str) -> bool:
    host, _, port = address.removeprefix("http://").rpartition(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def test_the_demo_started_its_own_api_and_workers_and_stopped_them_all(demo, stack):
    started = demo.summary["started"]
    # Nothing ran on its ports: it started an API, worker A on CHAT4ALL_WEB_PORT, and B.
    assert sorted(s.split()[0] for s in started) == ["api", "worker", "worker"]
    assert f"worker A http://127.0.0.1:{demo.env['CHAT4ALL_WEB_PORT']}" in started
    assert not [s for s in started if _listening(s.split()[-1])]
    # A worker stopped during a rebalance may not leave the group: its member goes once its
    # session times out (6 s with --fast), which a running worker's heartbeats would prevent.
    wait_until(
        lambda: asyncio.run(describe_group(stack, demo.env["CHAT4ALL_APP_ID"])).members == [],
        timeout=20,
        what="no member left in the demo's group",
    )
