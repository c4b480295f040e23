"""docker-compose.yml against the compose specification, the platform's settings and `--scale worker=N`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml

from chat4all.settings import REPO_ROOT, Settings
from cli.stack import prometheus

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# The compose-spec schema that check-jsonschema (pinned in setup.cfg's dev extra) vendors, with
# its licence and checksum beside it in the package.
SCHEMA = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
SETTING_NAMES = {f"CHAT4ALL_{name.upper()}" for name in Settings.model_fields}
# A variable assigned in a shell command line, e.g. `CHAT4ALL_WEB_HOST="$(hostname)" exec ...`.
ASSIGNED_IN_COMMAND = re.compile(r"\b(CHAT4ALL_[A-Z0-9_]+)=")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_validator() -> jsonschema.Draft7Validator:
    """A validator of the compose specification (the schema is draft 7; its $schema URL lacks the '#')."""
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """A service's environment as a mapping, from either of the forms compose allows."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def chat4all_variables(compose: dict[str, Any]) -> dict[str, set[str]]:
    """Service -> the CHAT4ALL_ variables it sets, in its environment or in its command line."""
    found: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        names = {key for key in environment(service) if key.startswith("CHAT4ALL_")}
        command = service.get("command") or []
        for part in [command] if isinstance(command, str) else command:
            names |= set(ASSIGNED_IN_COMMAND.findall(part))
        found[name] = names
    return found


def unknown_settings(compose: dict[str, Any]) -> dict[str, set[str]]:
    """Service -> the CHAT4ALL_ variables it sets that are no setting of chat4all/settings.py."""
    unknown = {name: names - SETTING_NAMES for name, names in chat4all_variables(compose).items()}
    return {name: names for name, names in unknown.items() if names}


def test_the_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = compose_validator()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors


def test_the_schema_rejects_what_compose_rejects() -> None:
    validator = compose_validator()
    assert validator.is_valid(
        {"services": {"worker": {"image": "x", "depends_on": {"init": {"condition": "service_started"}}}}}
    )
    assert not validator.is_valid({"services": {"worker": {"image": "x", "scale_to": 3}}})
    condition = {"init": {"condition": "service_happy"}}
    assert not validator.is_valid({"services": {"worker": {"image": "x", "depends_on": condition}}})


def test_every_chat4all_variable_it_sets_is_a_setting(compose: dict[str, Any]) -> None:
    variables = chat4all_variables(compose)
    assert {"CHAT4ALL_KAFKA_HOST", "CHAT4ALL_WEB_BIND"} <= variables["worker"]
    assert "CHAT4ALL_WEB_HOST" in variables["worker"], "set from the container's hostname"
    assert unknown_settings(compose) == {}


def test_a_misspelt_variable_is_reported() -> None:
    bad = {
        "services": {
            "api": {"environment": ["CHAT4ALL_API_HOST=0.0.0.0", "CHAT4ALL_API_HSOT=0.0.0.0"]},
            "worker": {"command": ["sh", "-c", "CHAT4ALL_WEB_HOTS=$(hostname) exec chat4all worker"]},
        }
    }
    assert unknown_settings(bad) == {"api": {"CHAT4ALL_API_HSOT"}, "worker": {"CHAT4ALL_WEB_HOTS"}}


def test_workers_scale_without_colliding(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "hostname" not in worker, "both would be one per service"
    for port in worker.get("ports", []):
        published = port.get("published") if isinstance(port, dict) else str(port).rsplit(":", 1)[0]
        host_port = str(published or "").rsplit(":", 1)[-1]
        assert host_port in ("", "None"), f"a fixed host port {port!r} lets only one worker start"
    # Each replica names its own container to the other workers and Prometheus, not the service.
    assert "CHAT4ALL_WEB_HOST" not in environment(worker)
    assert "$$(hostname)" in COMPOSE_FILE.read_text()


def test_the_observability_services_are_there_and_pinned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana", "jaeger", "minio"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} is not pinned: {image}"
    major = services["prometheus"]["image"].split(":v", 1)[1].split(".")[0]
    assert int(major) == prometheus.MAJOR_VERSION, "compose runs the major version the local stack checks"
    assert services["jaeger"]["image"] == "jaegertracing/all-in-one:1.76.0"
    mounts = {volume.split(":")[0] for volume in services["grafana"]["volumes"]}
    assert {"./grafana/provisioning", "./grafana/dashboards"} <= mounts
    for mount in mounts | {services["prometheus"]["volumes"][0].split(":")[0]}:
        assert (REPO_ROOT / mount).is_dir(), mount


def test_prometheus_gets_its_rule_files_from_the_mounted_folder(compose: dict[str, Any]) -> None:
    source, target = compose["services"]["prometheus"]["volumes"][0].split(":")[:2]
    assert target == "/etc/prometheus"
    config = yaml.safe_load((REPO_ROOT / "grafana" / "prometheus.yml").read_text())
    assert source == "./grafana" and config["rule_files"]
    for rule_file in config["rule_files"]:
        assert (REPO_ROOT / source / rule_file).is_file(), rule_file
    # promtool of the local stack's Prometheus (the release compose pins) checks the file as mounted.
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deps` installs Debian's prometheus package"
    checked = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=REPO_ROOT / source,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # Every replica of a scaled service is its own target (Docker's DNS), not one of them at random.
    assert jobs["chat4all-worker"]["dns_sd_configs"] == [{"names": ["worker"], "type": "A", "port": 6066}]
    assert jobs["chat4all-api"]["dns_sd_configs"] == [{"names": ["api"], "type": "A", "port": 9464}]


def test_the_deployment_doc_lists_every_alert_to_wire() -> None:
    rules = yaml.safe_load((REPO_ROOT / "grafana" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    doc = (REPO_ROOT / "docs" / "deployment.md").read_text()
    assert alerts and {alert for alert in alerts if f"| `{alert}` |" not in doc} == set()
