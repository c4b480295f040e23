"""The CLI's session file: private to its user."""

from __future__ import annotations

import os
import stat


def test_cli_session_file_is_private(tmp_path, monkeypatch) -> None:
    from cli import client

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = client.save_session({"access_token": "t", "user_id": "u"})
    assert path.parent == tmp_path / "chat4all"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    os.chmod(path, 0o644)
    client.save_session({"access_token": "t2"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert client.load_session() == {"access_token": "t2"}
