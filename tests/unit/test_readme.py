"""The README says what the code does: its settings table is the generated one, its two commands do what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from chat4all.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_matches_settings_class() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_settings.py"), "--check"], cwd=ROOT
    )
    assert result.returncode == 0, "README settings table is stale: run `python scripts/readme_settings.py`"


def _readme_commands() -> dict[str, str]:
    """``make <target>  # what it does`` of the README's first shell block, target -> what it says."""
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None, "the README starts with a ```sh block of commands"
    return {m.group(1): m.group(2) for m in re.finditer(r"^make (\S+)\s+#\s*(.+)$", block.group(1), re.M)}


def _recipe(target: str) -> list[str]:
    """The commands `make <target>` would run (a dry run: nothing is executed)."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, f"make {target}: {result.stderr}"
    return result.stdout.splitlines()


def test_the_readmes_two_commands_are_make_targets_that_do_what_it_says() -> None:
    commands = _readme_commands()
    assert set(commands) == {"run", "test"}

    # make run: "the local stack + one Faust worker + the gRPC API on 127.0.0.1:50051".
    run = _recipe("run")
    assert ".venv/bin/chat4all stack install" in run  # what the stack needs is installed first
    assert run[-1] == "scripts/run.sh"
    script = (ROOT / "scripts" / "run.sh").read_text()
    for step in ('"$BIN/chat4all" stack up', '"$BIN/chat4all" worker --role all', '"$BIN/chat4all" api'):
        assert step in script
    assert script.index("stack up") < script.index("worker --role all")
    assert "127.0.0.1:50051" in commands["run"]
    assert Settings.model_fields["api_host"].default == "127.0.0.1"
    assert Settings.model_fields["api_port"].default == 50051

    # make test: "the whole test suite on the real local stack (starts and stops what it needs)".
    test = _recipe("test")
    assert test[-1] == "scripts/run_tests.sh"
    assert ".venv/bin/lint-imports" in test[:-1]  # the import contract before the suite
    runner = (ROOT / "scripts" / "run_tests.sh").read_text()
    assert "trap cleanup EXIT" in runner and 'stack down --only-file "$started_file"' in runner
    assert runner.index('stack up --started-file "$started_file"') < runner.index('"$BIN/pytest" "$@"')

    # CI runs exactly that command.
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["make test"]
