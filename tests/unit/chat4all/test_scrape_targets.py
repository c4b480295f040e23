"""Target files of file service discovery: written atomically, removed, and pruned once their process is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chat4all import scrape_targets


def _register_in_child(targets_dir: Path) -> subprocess.Popen[bytes]:
    """A child process that registers a target and then waits to be killed."""
    code = (
        "import sys, time; from pathlib import Path; from chat4all import scrape_targets; "
        "scrape_targets.register(Path(sys.argv[1]), job='chat4all-worker', address='127.0.0.1:1'); "
        "print('ready', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(targets_dir)], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    return child


def test_register_writes_a_file_sd_group_and_unregister_removes_it(tmp_path: Path) -> None:
    path = scrape_targets.register(
        tmp_path, job="chat4all-api", address="127.0.0.1:9464", labels={"role": "api"}
    )
    assert path.name.startswith("chat4all-api-") and path.name.endswith(f"-{os.getpid()}.json")
    [group] = json.loads(path.read_text())
    assert group["targets"] == ["127.0.0.1:9464"]
    assert group["labels"]["role"] == "api"
    assert group["labels"][scrape_targets.PID_LABEL] == str(os.getpid())
    assert list(tmp_path.iterdir()) == [path]  # no partial file left behind
    assert scrape_targets.prune(tmp_path) == []  # this process is alive
    scrape_targets.unregister(path)
    assert not path.exists()
    scrape_targets.unregister(path)  # twice is fine


def test_prune_removes_the_target_of_a_killed_process_only(tmp_path: Path) -> None:
    mine = scrape_targets.register(tmp_path, job="chat4all-api", address="127.0.0.1:9464")
    child = _register_in_child(tmp_path)
    [theirs] = [p for p in tmp_path.glob("*.json") if p != mine]
    assert scrape_targets.prune(tmp_path) == []
    child.kill()  # SIGKILL: no chance to unregister
    child.wait(10)
    assert theirs.exists()
    assert scrape_targets.prune(tmp_path) == [theirs]
    assert sorted(tmp_path.glob("*.json")) == [mine]


def test_prune_spots_a_reused_pid_and_leaves_foreign_files_alone(tmp_path: Path) -> None:
    path = scrape_targets.register(tmp_path, job="chat4all-api", address="127.0.0.1:9464")
    [group] = json.loads(path.read_text())
    group["labels"][scrape_targets.START_LABEL] = "1"  # this pid, but a process started at another time
    path.write_text(json.dumps([group]))
    other_host = tmp_path / "chat4all-api-elsewhere-1.json"
    other_host.write_text(
        json.dumps(
            [{"targets": ["x:1"], "labels": {**group["labels"], scrape_targets.HOST_LABEL: "elsewhere"}}]
        )
    )
    not_ours = tmp_path / "hand-written.json"
    not_ours.write_text('[{"targets": ["x:2"]}]')
    assert scrape_targets.prune(tmp_path) == [path]
    assert other_host.exists() and not_ours.exists()


def test_reachable_address_dials_loopback_for_a_wildcard_bind() -> None:
    assert scrape_targets.reachable_address("0.0.0.0", 6066) == "127.0.0.1:6066"
    assert scrape_targets.reachable_address("10.0.0.5", 6066) == "10.0.0.5:6066"
