"""`chat4all upload` and `chat4all download` as a user runs them, through a link that breaks mid-upload."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chat4all.v1 import files_pb2, files_pb2_grpc
from cli.files import download_url, upload_file
from tests.integration.files.helpers import CuttingProxy, MiB, write_random

pytestmark = pytest.mark.integration

CHAT4ALL = str(Path(sys.executable).parent / "chat4all")


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHAT4ALL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_upload_resumes_after_a_cut_and_download_matches(api, room, tmp_path: Path) -> None:
    proxy = CuttingProxy(api.server.target, cut_after=12 * MiB)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CHAT4ALL_API_TARGET": proxy.target,
        "CHAT4ALL_PASSWORD": room.alice.password,
    }
    try:
        login = run(["login", room.alice.username], env, tmp_path)
        assert login.returncode == 0, login.stderr
        assert (tmp_path / "config" / "chat4all" / "session.json").stat().st_mode & 0o777 == 0o600

        path = write_random(tmp_path / "holiday.mp4", 24 * MiB)
        up = run(["upload", room.conversation_id, str(path)], env, tmp_path)
        assert up.returncode == 0, up.stderr
        assert proxy.cuts == 1, "the link was never cut: the test proved nothing"
        resumed = re.search(r"resuming at byte (\d+)", up.stderr + up.stdout)
        assert resumed and 0 < int(resumed.group(1)) <= 12 * MiB, up.stderr + up.stdout  # not from scratch
        fields = up.stdout.split()
        file_id = fields[fields.index("file_id") + 1]
        assert fields[fields.index("sha256") + 1] == hashlib.sha256(path.read_bytes()).hexdigest()

        out = tmp_path / "down"
        out.mkdir()
        down = run(["download", file_id], env, out)
        assert down.returncode == 0, down.stderr
        assert (out / "holiday.mp4").read_bytes() == path.read_bytes()

        env["CHAT4ALL_PASSWORD"] = room.eve.password
        assert run(["login", room.eve.username], env, tmp_path).returncode == 0
        denied = run(["download", file_id], env, out)
        assert denied.returncode != 0 and "PERMISSION_DENIED" in denied.stderr
    finally:
        proxy.close()


def test_download_resumes_with_range_after_a_cut(api_factory, room, settings, tmp_path: Path) -> None:
    """Clients reaching S3 through another address (CHAT4ALL_S3_PUBLIC_ENDPOINT) get URLs signed for it.

    A download cut half-way continues with a Range request.
    """
    proxy = CuttingProxy(settings.s3_endpoint, cut_after=6 * MiB, count_downstream=True)
    try:
        public = api_factory({"CHAT4ALL_S3_PUBLIC_ENDPOINT": proxy.target})
        path = write_random(tmp_path / "film.bin", 16 * MiB)
        done = upload_file(public.channel, room.alice.md, path=path, conversation_id=room.conversation_id)
        url = (
            public.stub(files_pb2_grpc.FileServiceStub)
            .GetDownloadUrl(
                files_pb2.GetDownloadUrlRequest(file_id=done.file_id), metadata=room.bob.md, timeout=10
            )
            .url
        )
        assert url.startswith(f"http://{proxy.target}/")

        seen: list[int] = []
        size = download_url(url, tmp_path / "copy.bin", progress=seen.append)
        assert proxy.cuts == 1
        assert size == 16 * MiB and (tmp_path / "copy.bin").read_bytes() == path.read_bytes()
        # The second request continued where the first stopped: progress never went back.
        assert all(b >= a for a, b in zip(seen, seen[1:], strict=False)), "the download started over"
    finally:
        proxy.close()
