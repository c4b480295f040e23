"""Rewrite the settings table in README.md from chat4all.settings (between the marker comments)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cli.settings_table import settings_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def main() -> int:
    text = README.read_text()
    new = re.sub(
        f"{re.escape(BEGIN)}.*?{re.escape(END)}", f"{BEGIN}\n{settings_markdown()}\n{END}", text, flags=re.S
    )
    if "--check" in sys.argv:
        return 0 if new == text else 1
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
