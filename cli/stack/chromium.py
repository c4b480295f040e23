"""Debian's chromium and chromium-driver: the headless browser that the inspector's browser tests drive."""

from __future__ import annotations

from cli.stack import apt

# Where Debian's packages put them; the tests use this chromedriver (no download by selenium-manager).
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PROGRAMS = {"chromium": "chromium", "chromedriver": "chromium-driver"}


def install() -> None:
    """Install chromium and chromium-driver with apt-get unless both are on PATH (needs root)."""
    apt.ensure_installed(PROGRAMS)
