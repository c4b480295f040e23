"""The base of one local-stack server: where it lives, how it installs, starts and answers."""

from __future__ import annotations

import logging
import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from string import Template

from chat4all.settings import REPO_ROOT, Settings
from cli.stack.exceptions import StackError
from cli.stack.process import read_pid

logger = logging.getLogger(__name__)

CONFIG_DIR = REPO_ROOT / "stack"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"


class Server(ABC):
    """One server of the local stack. Subclasses say how to install, configure, run and probe it."""

    name: str = ""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack_dir / self.name  # config, data, log and pid of this server
        self.data_dir = self.home / "data"
        self.pid_file = self.home / f"{self.name}.pid"
        self.log_file = self.home / f"{self.name}.log"

    @property
    @abstractmethod
    def port(self) -> int:
        """The port the server listens on (the one its health is probed on)."""

    @abstractmethod
    def install(self) -> None:
        """Make sure the server's binaries are present (idempotent)."""

    @abstractmethod
    def prepare(self) -> None:
        """Write its config and do first-run set-up (idempotent)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def healthy(self) -> bool:
        """A quick real request to the server: True when it answers as it should."""

    def pid(self) -> int | None:
        """The pid of the running server (from its pid file); None when it is not running."""
        return read_pid(self.pid_file)

    def render(self, template: str, target: Path, **values: object) -> Path:
        """Fill a config template from stack/ with ``values`` and write it under this server's home."""
        text = Template((CONFIG_DIR / template).read_text()).substitute(
            {k: str(v) for k, v in values.items()}
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target


def lib_dir(settings: Settings, artifact: str) -> Path:
    """Folder of an artifact's jars, shared by every stack instance (they are read-only)."""
    return settings.stack_lib_dir / artifact


def maven_install(settings: Settings, artifact: str) -> Path:
    """Copy the jars declared in stack/maven/<artifact>.pom.xml (and dependencies) into the cache once."""
    target = lib_dir(settings, artifact)
    marker = target / ".complete"
    if marker.exists():
        return target
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is not installed: it is needed to fetch the stack's jars")
    logger.info("fetching %s jars with Maven into %s", artifact, target)
    pom = CONFIG_DIR / "maven" / f"{artifact}.pom.xml"
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            MAVEN_DEPENDENCY_PLUGIN,
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"mvn could not fetch {artifact}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    marker.write_text("ok\n")
    return target


def classpath(folder: Path) -> str:
    """A Java classpath of every jar in ``folder``."""
    return str(folder / "*")


def java() -> str:
    """The path of ``java``; StackError if Java is not installed."""
    exe = shutil.which("java")
    if exe is None:
        raise StackError("Java (17) is not installed: it runs Kafka, Cassandra and S3Proxy")
    return exe
