"""The docs name only files that exist: every repository path in backticks or a link in docs/*.md and README.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# Written by the benchmarks, the browser tests and the local stack, so absent from a fresh checkout.
GENERATED = ("bench/results/", ".stack/", "tests/artifacts/")
# A path in backticks is read from the repository's root; only names under its top level count,
# so commands, URLs, home-directory and library paths are left alone.
TOP_LEVEL = {
    p.name for p in ROOT.iterdir() if p.name not in {".git", ".venv"} and not p.name.endswith("_cache")
}

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# Commands name files from the root; other blocks (layout trees, output) may be relative.
_SHELL = {"sh", "bash", "shell", "console"}
_INLINE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_TOKEN = re.compile(r"[^\s'\"(),;=\[\]{}]+")
_MODULE_NAME = re.compile(r"\w+\.py")


def _module_names() -> set[str]:
    """The file names of the repository's Python modules, for a doc that names one without its folder."""
    tops = [ROOT / name for name in TOP_LEVEL if not name.startswith(".")]
    return {p.name for top in tops if top.is_dir() for p in top.rglob("*.py")} | {t.name for t in tops}


def _exists(path: str) -> bool:
    """``path`` or, for ``module.attribute`` (``chat4all/cassandra.is_outage``), its module exists."""
    path = path.rstrip(".:")
    if "*" in path:
        return any(ROOT.glob(path))
    if (ROOT / path).exists():
        return True
    module, _, attribute = path.rpartition(".")
    return bool(module) and attribute.isidentifier() and (ROOT / f"{module}.py").exists()


def _backtick_paths(text: str) -> list[str]:
    spans = [m.group(2) for m in _FENCE.finditer(text) if m.group(1) in _SHELL]
    spans += [m.group(1) for m in _INLINE.finditer(_FENCE.sub("", text))]
    paths = []
    for span in spans:
        for token in _TOKEN.findall(span):
            # file.py:123 and path:Name name a file too
            token = token.split(":", 1)[0]
            if "/" in token and token.split("/", 1)[0] in TOP_LEVEL:
                paths.append(token)
    return paths


def _link_paths(doc: Path, text: str) -> list[str]:
    """Relative link targets, as paths from the repository's root."""
    paths = []
    for target in _LINK.findall(text):
        target = target.split("#", 1)[0]
        if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        resolved = (doc.parent / target).resolve()
        paths.append(resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else target)
    return paths


def missing_references(doc: Path, text: str) -> list[str]:
    """The repository paths ``text`` (read at ``doc``) names that do not exist, generated ones and <placeholders> aside.

    A span that is only a module's file name (`test_admission_api.py`, in a list under its folder's
    name) must name a module somewhere in the repository.
    """
    paths = {
        path
        for path in _backtick_paths(text) + _link_paths(doc, text)
        if "<" not in path and not path.startswith(GENERATED) and not _exists(path)
    }
    names = {name for name in _INLINE.findall(_FENCE.sub("", text)) if _MODULE_NAME.fullmatch(name)}
    return sorted(paths | (names - _module_names()))


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    assert missing_references(doc, doc.read_text()) == []


def test_a_missing_file_is_reported_and_generated_or_placeholder_paths_are_not() -> None:
    text = (
        "Missing: `streams/records.py`, [the card](../DESIGN.md), `chat4all/cassandra.nope.is_outage`,"
        " `test_wire_api.py`.\n"
        "Present: `streams/app.py`, `chat4all/cassandra.is_outage`, [wire](wire-format.md),"
        " `tests/unit/tables/test_*.py`, `test_wire.py`, `agents/router.py:12`.\n"
        "Generated or not the repository's: `bench/results/step-1/results.md`, `.stack/logs/api.log`,"
        " `api/<module>.py`, `~/.config/x.py`, `EpollSelector.select (selectors.py)`.\n"
        "```sh\n.venv/bin/python bench/gone.py --out bench/results/x\n```\n"
    )
    assert missing_references(ROOT / "docs" / "x.md", text) == [
        "DESIGN.md",
        "bench/gone.py",
        "chat4all/cassandra.nope.is_outage",
        "streams/records.py",
        "test_wire_api.py",
    ]
