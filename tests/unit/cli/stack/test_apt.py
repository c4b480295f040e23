"""cli/stack/apt.py: only the packages of missing programs are installed, and nothing runs when none is missing."""

from __future__ import annotations

import subprocess

import pytest

from cli.stack import apt
from cli.stack.exceptions import StackError


def test_only_packages_of_programs_missing_from_path_are_listed() -> None:
    programs = {"sh": "dash", "c4a-no-such-program": "c4a-pkg", "c4a-other-missing": "c4a-pkg"}
    assert apt.missing_packages(programs) == ["c4a-pkg"]


def test_nothing_runs_when_every_program_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"apt-get ran: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    apt.ensure_installed({"sh": "dash"})


def test_without_root_a_missing_package_is_named_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apt.os, "geteuid", lambda: 1000)
    with pytest.raises(StackError, match="c4a-pkg"):
        apt.ensure_installed({"c4a-no-such-program": "c4a-pkg"})
