"""The distribution (setup.cfg) holds every package of the product, and the image installs all of it."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

from setuptools import find_packages

from chat4all.settings import REPO_ROOT

# Folders with Python packages that are not part of the product.
NOT_SHIPPED = {"tests"}
# Files outside the packages that the image's processes read (`stack bootstrap`: cql/schema.cql).
RUNTIME_FILES = ["cql/schema.cql", "setup.cfg", "pyproject.toml", "README.md"]


def find_includes() -> list[str]:
    """The patterns of setup.cfg's [options.packages.find] include."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    assert config["options"]["packages"].strip() == "find:"
    return config["options.packages.find"]["include"].split()


def product_packages() -> set[str]:
    """Every top-level folder of the repository that is a Python package, but the tests."""
    return {
        path.parent.name for path in REPO_ROOT.glob("*/__init__.py") if path.parent.name not in NOT_SHIPPED
    }


def test_every_top_level_package_is_in_the_distribution() -> None:
    includes = find_includes()
    top_level = {pattern for pattern in includes if "." not in pattern and "*" not in pattern}
    assert top_level == product_packages()
    for name in top_level:
        assert f"{name}.*" in includes, f"{name}'s subpackages are left out of the wheel"
    assert {"gateway", "cli", "chat4all", "api", "agents", "streams", "tables", "connectors"} <= top_level


def test_every_folder_of_python_code_is_a_package_the_distribution_finds() -> None:
    found = set(find_packages(where=str(REPO_ROOT), include=find_includes()))
    folders = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for name in product_packages()
        for path in (REPO_ROOT / name).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert folders - found == set(), "folders of code without __init__.py are not shipped"


def test_the_image_installs_the_distribution_from_the_whole_context() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    assert "COPY . ." in dockerfile, "the image copies the whole context, not a list of folders"
    assert any("pip install" in line and line.rstrip(" \\").endswith(" .") for line in dockerfile)
    ignored = [
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for shipped in [*sorted(product_packages()), *RUNTIME_FILES]:
        parts = Path(shipped).parts
        hits = [
            p for p in ignored if any(fnmatch.fnmatch("/".join(parts[: i + 1]), p) for i in range(len(parts)))
        ]
        assert not hits, f"{shipped} is left out of the image by .dockerignore {hits}"
