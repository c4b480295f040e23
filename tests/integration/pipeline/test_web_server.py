"""The worker's web server on a real worker: where it listens, the address it gives others, the operator token."""

from __future__ import annotations

import fcntl
import json
import secrets
import socket
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from chat4all.settings import Settings
from cli.harness.isolation import IsolatedPipeline
from cli.harness.worker_process import FAST_RECEIPTS, WorkerProcess

pytestmark = pytest.mark.integration

_SIOCGIFADDR = 0x8915


def non_loopback_addresses() -> list[str]:
    """The IPv4 addresses of this machine's interfaces, loopback excluded."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on it
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                found.append(address)
    return found


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses a socket listens on at ``port`` (from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, state = line.split()[1], line.split()[3]
            host, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntoa(struct.pack("<I", int(host, 16))))
    return found


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def post_faults(
    worker: WorkerProcess, body: dict[str, Any], *, token: str | None = None, scheme: str = "Bearer"
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    req = urllib.request.Request(
        worker.url + "/connectors/faults", data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def pipeline(stack: Settings) -> Iterator[IsolatedPipeline]:
    p = IsolatedPipeline(stack, name="c4a-web", env=FAST_RECEIPTS)
    try:
        yield p
    finally:
        p.close()


def test_outside_dev_mode_it_listens_on_loopback_and_faults_need_the_operator_token(pipeline) -> None:
    token = secrets.token_urlsafe(32)
    worker = pipeline.worker(role="connectors", CHAT4ALL_DEV_MODE="false", CHAT4ALL_OPERATOR_TOKEN=token)
    worker.wait_ready()

    # Bound to 127.0.0.1 (the default), not to every interface: nothing answers on the others.
    assert listening_addresses(worker.web_port) == {"127.0.0.1"}
    for address in non_loopback_addresses():
        assert not reachable(address, worker.web_port), f"the web server answers on {address}"
    # Others are told to reach it at CHAT4ALL_WEB_HOST (default 127.0.0.1): faust's table routing.
    assert _route_urls(worker.get("/router/")[1]) == {f"http://127.0.0.1:{worker.web_port}"}
    assert worker.get("/connectors/faults")[1]["faults"]["outage"] is False

    for given, scheme in (
        (None, "Bearer"),
        ("wrong-" + token, "Bearer"),
        (token[:-1], "Bearer"),
        (token, "Basic"),
        ("", "Bearer"),
    ):
        status, body = post_faults(worker, {"outage": True}, token=given, scheme=scheme)
        assert status == 401, (given, scheme, status, body)
        assert "operator token" in body["error"]
    assert worker.get("/connectors/faults")[1]["faults"]["outage"] is False  # nothing changed

    status, body = post_faults(worker, {"outage": True}, token=token)
    assert status == 200 and body["faults"]["outage"] is True
    status, body = post_faults(worker, {"outage": False}, token=token)
    assert status == 200 and body["faults"]["outage"] is False
    # Neither the token nor the wrong ones reach the log.
    log = worker.log_path.read_text(errors="replace")
    assert "operator endpoint POST /connectors/faults refused" in log
    assert token not in log and token[:-1] not in log
    worker.stop()


def test_outside_dev_mode_without_a_token_the_faults_endpoint_is_off(pipeline) -> None:
    worker = pipeline.worker(role="connectors", CHAT4ALL_DEV_MODE="false")
    worker.wait_ready()
    for given in (None, "anything"):
        status, body = post_faults(worker, {"outage": True}, token=given)
        assert status == 403 and "CHAT4ALL_OPERATOR_TOKEN" in body["error"]
    assert worker.get("/connectors/faults")[1]["faults"]["outage"] is False
    worker.stop()


def test_bind_and_host_settings_in_dev_mode(pipeline) -> None:
    """CHAT4ALL_WEB_BIND=0.0.0.0 listens everywhere; CHAT4ALL_WEB_HOST is faust's routing address.

    In dev mode without a token the faults endpoint is open (the local stack).
    """
    others = non_loopback_addresses()
    host = others[0] if others else socket.gethostname()
    worker = pipeline.worker(
        role="connectors", CHAT4ALL_DEV_MODE="true", CHAT4ALL_WEB_BIND="0.0.0.0", CHAT4ALL_WEB_HOST=host
    )
    worker.wait_ready()
    assert listening_addresses(worker.web_port) == {"0.0.0.0"}
    for address in others:
        assert reachable(address, worker.web_port)
    routes = worker.get("/router/")[1]
    assert _route_urls(routes) == {f"http://{host}:{worker.web_port}"}, routes

    status, body = post_faults(worker, {"outage": True})
    assert status == 200 and body["faults"]["outage"] is True
    assert post_faults(worker, {"outage": False})[0] == 200
    worker.stop()


def _route_urls(routes: Any) -> set[str]:
    """The worker URLs in faust's /router/ page ({url: {changelog topic: [partitions]}})."""
    return set(routes) if isinstance(routes, dict) else set()
