"""The `chat4all` CLI as a client of a real API (and worker): the README's first-conversation walkthrough."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cli.harness.api_client import ApiClient
from cli.harness.api_process import chat4all_executable

pytestmark = pytest.mark.integration


class Cli:
    """Runs `chat4all` as one user: its own config dir (token file) and the test API."""

    def __init__(self, api: ApiClient, home: Path) -> None:
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(home), "CHAT4ALL_API_TARGET": api.server.target}
        self.home = home

    def __call__(self, *args: str, ok: bool = True) -> str:
        done = subprocess.run(
            [chat4all_executable(), *args], env=self.env, capture_output=True, text=True, timeout=30
        )
        if ok:
            assert done.returncode == 0, f"chat4all {' '.join(args)}: {done.stderr}"
        else:
            assert done.returncode != 0, f"chat4all {' '.join(args)} should have failed: {done.stdout}"
        return done.stdout + done.stderr


def test_first_conversation_walkthrough(api: ApiClient, pipeline_worker, tmp_path: Path) -> None:
    alice, bob = Cli(api, tmp_path / "alice"), Cli(api, tmp_path / "bob")
    a_name, b_name = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    alice("register", a_name, "--password", "alice-password")
    out = bob("register", b_name, "--password", "bob-password", "--channel", "whatsapp=+5511999990000")
    bob_id = re.search(r"user_id ([0-9a-f-]{36})", out).group(1)

    assert "logged in as" in alice("login", a_name, "--password", "alice-password")
    token_file = tmp_path / "alice" / "chat4all" / "session.json"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert "wrong username or password" in bob("login", b_name, "--password", "nope-nope", ok=False)
    bob("login", b_name, "--password", "bob-password")
    assert "whatsapp=+5511999990000" in bob("me")

    out = alice("conversation", "create", bob_id)
    cid = re.search(r"conversation ([0-9a-f-]{36})", out).group(1)
    assert cid in bob("conversation", "list")
    sent = alice("send", cid, "hello bob")
    message_id = re.search(r"sent ([0-9a-f-]{36})", sent).group(1)

    deadline = time.monotonic() + 30
    while message_id not in (history := bob("history", cid)):
        assert time.monotonic() < deadline, "message never showed up in bob's history"
        time.sleep(0.3)
    assert "hello bob" in history
    assert "marked 1 message(s) read" in bob("read", cid, message_id)
    assert "INVALID_ARGUMENT" in alice("send", cid, "", ok=False)

    alice("logout")
    assert not token_file.exists()
    assert "not logged in" in alice("history", cid, ok=False)
