"""The alert rules and the Prometheus config pass promtool: syntax, rule unit tests, the rendered config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from chat4all.settings import REPO_ROOT, Settings
from cli.stack.prometheus import render_config

GRAFANA = REPO_ROOT / "grafana"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool (installed with prometheus by `make deps`)."""
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make deps` installs Debian's prometheus package"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=GRAFANA)


def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((GRAFANA / "alerts_test.yml").read_text())
    tested = {
        case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"] if case["exp_alerts"]
    }
    assert alerts == tested, f"alerts no unit test sees firing: {sorted(alerts - tested)}"


def test_the_stack_config_rendered_from_compose_config_is_valid(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path, prometheus_scrape_interval_seconds=2)
    config = render_config(settings)
    assert [j["job_name"] for j in config["scrape_configs"]] == ["chat4all-worker", "chat4all-api"]
    assert config["scrape_configs"][0]["file_sd_configs"] == [
        {"files": [str(tmp_path / "prometheus-targets" / "chat4all-worker-*.json")]}
    ]
    assert all("dns_sd_configs" not in j for j in config["scrape_configs"])
    assert config["global"]["scrape_interval"] == "2s"
    assert config["rule_files"] == [str(GRAFANA / "alerts.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
