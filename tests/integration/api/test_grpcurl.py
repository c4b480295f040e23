"""An independent client (grpcurl, Go) drives the API through server reflection alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from cli.harness.api_client import ApiClient

pytestmark = pytest.mark.integration


def grpcurl_path() -> str:
    found = shutil.which("grpcurl")
    if found:
        return found
    gopath = subprocess.run(
        ["go", "env", "GOPATH"], capture_output=True, text=True, check=False
    ).stdout.strip()
    candidate = Path(gopath or Path.home() / "go") / "bin" / "grpcurl"
    if not candidate.exists():
        pytest.fail("grpcurl not installed: run scripts/install_go_tools.sh (make deps)")
    return str(candidate)


def grpcurl(api: ApiClient, *args: str, data: dict | None = None, headers: tuple[str, ...] = ()) -> str:
    cmd = [grpcurl_path(), "-plaintext", "-max-time", "10"]
    for header in headers:
        cmd += ["-H", header]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    cmd += [api.server.target, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr}"
    return done.stdout


def test_grpcurl_lists_describes_and_calls(api: ApiClient) -> None:
    services = grpcurl(api, "list").split()
    for name in (
        "chat4all.v1.AuthService",
        "chat4all.v1.UserService",
        "chat4all.v1.ConversationService",
        "chat4all.v1.MessageService",
        "grpc.health.v1.Health",
    ):
        assert name in services
    described = grpcurl(api, "describe", "chat4all.v1.MessageStatus")
    assert "MESSAGE_STATUS_READ = 3" in described
    username, password = f"grpcurl-{uuid.uuid4().hex[:8]}", "grpcurl-password"
    registered = json.loads(
        grpcurl(api, "chat4all.v1.AuthService/Register", data={"username": username, "password": password})
    )
    login = json.loads(
        grpcurl(api, "chat4all.v1.AuthService/Login", data={"username": username, "password": password})
    )
    assert login["user_id"] == registered["user_id"]
    me = json.loads(
        grpcurl(
            api, "chat4all.v1.UserService/GetMe", headers=(f"authorization: Bearer {login['access_token']}",)
        )
    )
    assert me == {"user_id": registered["user_id"], "username": username}
    health = json.loads(grpcurl(api, "grpc.health.v1.Health/Check"))
    assert health == {"status": "SERVING"}
