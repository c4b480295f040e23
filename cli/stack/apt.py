"""Debian packages the stack and the tests need, installed with apt-get when their programs are missing."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping

from cli.stack.exceptions import StackError

logger = logging.getLogger(__name__)


def missing_packages(programs: Mapping[str, str]) -> list[str]:
    """The packages of ``programs`` (program name -> Debian package) whose program is not on PATH."""
    return sorted({package for program, package in programs.items() if shutil.which(program) is None})


def ensure_installed(programs: Mapping[str, str]) -> None:
    """Install the packages of the programs (program name -> Debian package) missing from PATH.

    Nothing runs when every program is there. Otherwise ``apt-get update`` then one quiet
    ``apt-get install`` of the missing packages (without recommends), which needs root.
    """
    packages = missing_packages(programs)
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"missing {', '.join(packages)}: install Debian's package(s) {' '.join(packages)}")
    logger.info("installing %s with apt-get", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
