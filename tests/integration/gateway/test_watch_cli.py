"""`chat4all watch` prints a user's live events: a new message, then its receipts changing."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from chat4all.settings import get_settings
from cli.harness.api_client import ApiClient
from cli.harness.api_process import chat4all_executable
from tests.integration.api.test_cli import Cli
from tests.integration.gateway.presence import wait_presence

pytestmark = pytest.mark.integration


def test_watch_shows_a_new_message_and_the_senders_view_of_its_receipts(
    api: ApiClient, pipeline_worker, tmp_path: Path
) -> None:
    alice, bob = Cli(api, tmp_path / "alice"), Cli(api, tmp_path / "bob")
    suffix = uuid.uuid4().hex[:8]
    out = bob("register", f"bob-{suffix}", "--password", "bob-password")
    bob_id = re.search(r"user_id ([0-9a-f-]{36})", out).group(1)
    bob("login", f"bob-{suffix}", "--password", "bob-password")
    out = alice("register", f"alice-{suffix}", "--password", "alice-password")
    alice_id = re.search(r"user_id ([0-9a-f-]{36})", out).group(1)
    alice("login", f"alice-{suffix}", "--password", "alice-password")
    cid = re.search(r"conversation ([0-9a-f-]{36})", alice("conversation", "create", bob_id)).group(1)

    # Bob watches for one event (the new message); Alice until bob's READ. Live events are
    # at-least-once (a receipt notification repeats when the tracker replays after a rebalance),
    # so Alice's watch may print a receipt twice: what must hold is DELIVERED first, then READ.
    bob_watch = subprocess.Popen(
        [chat4all_executable(), "watch", "--count", "1", "--timeout", "40"],
        env=bob.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    alice_watch = subprocess.Popen(
        [chat4all_executable(), "watch", "--count", "4", "--timeout", "40"],
        env=alice.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Both streams are open once each user shows a live session; until then a send could be missed.
        for user_id in (bob_id, alice_id):
            asyncio.run(
                wait_presence(
                    get_settings(), user_id, online=True, timeout=20, what="watch never opened a session"
                )
            )
        message_id = re.search(r"sent ([0-9a-f-]{36})", alice("send", cid, "watch me")).group(1)
        bob_out, _ = bob_watch.communicate(timeout=45)
        assert re.search(rf"new\s+{cid} {message_id} from .*: watch me", bob_out), bob_out
        bob("read", cid, message_id)
        alice_lines = []
        assert alice_watch.stdout is not None
        for line in alice_watch.stdout:  # ends at --count, --timeout, or the kill below
            alice_lines.append(line)
            if message_id in line and line.split()[1] == "READ":
                break
    finally:
        for proc in (bob_watch, alice_watch):
            if proc.poll() is None:
                proc.kill()
    alice_out = "".join(alice_lines)
    lines = [line for line in alice_lines if message_id in line]
    statuses = [line.split()[1] for line in lines]
    assert list(dict.fromkeys(statuses)) == ["DELIVERED", "READ"], alice_out
    assert all(f"by {bob_id} on native" in line for line in lines)
