"""The README's settings table is the one the code generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_matches_settings_class() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_settings.py"), "--check"], cwd=ROOT)
    assert result.returncode == 0, "README settings table is stale: run `python scripts/readme_settings.py`"


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
