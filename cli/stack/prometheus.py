"""Prometheus from Debian's prometheus package: scrapes every API and worker that registered a target file."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from chat4all import scrape_targets
from chat4all.settings import REPO_ROOT, Settings
from cli.stack import apt
from cli.stack.exceptions import StackError
from cli.stack.server import Server

# The one source of the jobs and rules: docker-compose mounts it, the stack renders from it.
SOURCE_CONFIG = REPO_ROOT / "grafana" / "prometheus.yml"
# Debian 12 ships 2.42; compose's image pins the same major, so the rules tested here are what it runs.
MAJOR_VERSION = 2


def render_config(settings: Settings) -> dict[str, Any]:
    """grafana/prometheus.yml with file service discovery on the targets folder and the stack's intervals.

    Each job reads the files its processes write, ``<job_name>-*.json`` (chat4all/scrape_targets.py);
    rule files become absolute paths, still beside the source config.
    """
    config = yaml.safe_load(SOURCE_CONFIG.read_text())
    interval = f"{settings.prometheus_scrape_interval_seconds:g}s"
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": interval,
        "evaluation_interval": interval,
        "scrape_timeout": interval,  # a hung process must fail its scrape before the next one is due
    }
    config["rule_files"] = [str(SOURCE_CONFIG.parent / name) for name in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for key in [k for k in job if k.endswith("_sd_configs") or k == "static_configs"]:
            del job[key]
        job["file_sd_configs"] = [{"files": [str(settings.targets_dir / f"{job['job_name']}-*.json")]}]
    return config


def installed_major_version(executable: str) -> int:
    """The major version ``prometheus --version`` reports (e.g. 2 for ``version 2.42.0+ds``)."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    try:
        return int(text.split("version", 1)[1].split()[0].split(".")[0])
    except (IndexError, ValueError):
        raise StackError(f"cannot read the version of {executable}: {text[:200]}") from None


class Prometheus(Server):
    """The local stack's Prometheus: its TSDB under the stack dir, retention bounded by settings."""

    name = "prometheus"

    @property
    def port(self) -> int:
        """The web UI and query API port (CHAT4ALL_PROMETHEUS_PORT)."""
        return self.settings.prometheus_port

    @property
    def config_file(self) -> Path:
        """Where the rendered config is written."""
        return self.home / "conf" / "prometheus.yml"

    def install(self) -> None:
        """Install Debian's prometheus package (promtool comes with it) unless it is on PATH; check its major version."""
        apt.ensure_installed({"prometheus": "prometheus", "promtool": "prometheus"})
        major = installed_major_version(shutil.which("prometheus") or "prometheus")
        if major != MAJOR_VERSION:
            raise StackError(
                f"prometheus {major}.x is installed; the stack and compose pin {MAJOR_VERSION}.x"
            )

    def prepare(self) -> None:
        """Write the config and create the data and targets folders; prune targets of exited processes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.targets_dir.mkdir(parents=True, exist_ok=True)
        scrape_targets.prune(self.settings.targets_dir)
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "# Rendered by cli/stack/prometheus.py from grafana/prometheus.yml: edit that file.\n"
            + yaml.safe_dump(render_config(self.settings), sort_keys=False)
        )

    def command(self) -> list[str]:
        """The prometheus command line: loopback only, retention by time and by size."""
        settings = self.settings
        return [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={settings.prometheus_retention_time}",
            f"--storage.tsdb.retention.size={settings.prometheus_retention_size}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",  # POST /-/reload re-reads the config and rules
        ]

    def healthy(self) -> bool:
        """GET /-/ready answers 200 once the TSDB is open and the config is loaded."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
