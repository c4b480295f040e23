"""Prometheus scrapes a real API and workers: every dashboard panel's and alert's PromQL returns series of its own.

One module-wide scenario on a Prometheus of the test's own (scraping every second): traffic
through the API and a worker, then the rare events each alert watches for (a dead letter, a
provider outage that opens the breaker while lag grows, a partition takeover by a second
worker, Cassandra cut off from that worker, a hung worker and a hung API), each waited for in
Prometheus itself. Then a SIGKILLed worker's target is pruned, and clean stops unregister.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from chat4all.settings import REPO_ROOT, Settings
from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient, client_for, expect_status
from cli.harness.api_process import start_api
from cli.harness.isolation import IsolatedPipeline
from cli.harness.prometheus_process import PrometheusProcess
from cli.harness.seeding import message_event, publish_messages
from cli.harness.worker_process import FAST_RECEIPTS, WorkerProcess
from tests.integration.pipeline.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.integration

DASHBOARD = REPO_ROOT / "grafana" / "dashboards" / "chat4all.json"
ALERTS = REPO_ROOT / "grafana" / "alerts.yml"
PHONE = "+5511999990000"


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel of the generated dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def alert_exprs() -> dict[str, str]:
    """Alert name -> its PromQL, from grafana/alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}


@dataclass
class Scenario:
    """What the scenario ran and what Prometheus answered while each condition held."""

    prometheus: PrometheusProcess
    pipeline: IsolatedPipeline
    api: ApiClient
    proxy: CuttableProxy
    alerts_seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    panels_seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def worker_a(self) -> WorkerProcess:
        """The first worker; the second one's Cassandra goes through the proxy."""
        return self.pipeline.workers[0]

    def see_alert(self, name: str, *, timeout: float = 60) -> None:
        """Wait until alert ``name``'s expression returns series; keep them."""
        self.alerts_seen[name] = self.prometheus.wait_for_series(
            alert_exprs()[name], timeout=timeout, what=f"alert {name}"
        )


def _send(api: ApiClient, sender: Any, conversations: list[str], count: int, *, prefix: str) -> int:
    """Send ``count`` messages round the conversations; returns how many."""
    for i in range(count):
        api.messages.SendMessage(
            pb.SendMessageRequest(
                conversation_id=conversations[i % len(conversations)], content=f"{prefix}-{i}"
            ),
            metadata=sender.md,
            timeout=10,
        )
    return count


def _target_of(worker: WorkerProcess) -> str:
    return f"127.0.0.1:{worker.web_port}"


@pytest.fixture(scope="module")
def scenario(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Run the whole scenario once for the module; stops everything it started."""
    prometheus = PrometheusProcess(home=tmp_path_factory.mktemp("prometheus")).start()
    proxy = CuttableProxy(target=(stack.cassandra_host, stack.cassandra_port)).start()
    pipeline = IsolatedPipeline(stack, name="c4a-prom", env={**FAST_RECEIPTS, **prometheus.env()})
    api_process = None
    try:
        pipeline.worker().wait_ready()
        api_process = start_api(
            {
                "CHAT4ALL_TOPIC_PREFIX": pipeline.prefix,
                "CHAT4ALL_APP_ID": pipeline.app_id,
                **prometheus.env(),
            },
            log_dir=tmp_path_factory.mktemp("api"),
        )
        api = client_for(api_process)
        scene = Scenario(prometheus=prometheus, pipeline=pipeline, api=api, proxy=proxy)
        _run(scene)
        yield scene
    finally:
        if api_process is not None:
            api_process.stop()
        pipeline.close()
        proxy.cut()
        prometheus.stop()


def _run(scene: Scenario) -> None:
    prom, api, worker_a = scene.prometheus, scene.api, scene.worker_a
    prom.wait_for_series('up{job="chat4all-worker"} == 1', timeout=30, what="the worker scraped")
    prom.wait_for_series('up{job="chat4all-api"} == 1', timeout=30, what="the API scraped")

    # Everyday traffic: messages through the API to WhatsApp recipients, READ receipts, a refused call.
    # Eight conversations, so that both workers own some of them once the second one joins.
    alice = api.register_and_login("prom-a", channels={"whatsapp": PHONE})
    conversations = [
        api.private_conversation(alice, api.register_and_login(f"prom-{i}", channels={"whatsapp": PHONE}))
        for i in range(8)
    ]
    sent = _send(api, alice, conversations, 10, prefix="warm")
    expect_status(
        grpc.StatusCode.UNAUTHENTICATED,
        api.messages.SendMessage,
        pb.SendMessageRequest(conversation_id=conversations[0], content="no token"),
        timeout=10,
    )
    _wait_read(prom, sent)

    # A dead letter: a message for a conversation that does not exist, straight onto the topic.
    orphan = message_event("00000000-0000-7000-8000-000000000000", alice.user_id)
    publish_messages(scene.pipeline.settings, [orphan], prefix=scene.pipeline.prefix)
    scene.see_alert("Chat4AllDeadLettersIncreasing")

    # The provider goes down: the breaker opens and the outbound records pile up behind it.
    worker_a.post("/connectors/faults", {"outage": True})
    try:
        for wave in range(3):  # the lag gauge is refreshed every 5 s: let it see the pile grow
            sent += _send(api, alice, conversations, 5, prefix=f"outage{wave}")
            time.sleep(5)
        scene.see_alert("Chat4AllBreakerOpen", timeout=30)
        scene.see_alert("Chat4AllConsumerLagGrowing", timeout=60)
    finally:
        worker_a.post("/connectors/faults", {"outage": False})
    prom.wait_for_series(
        "max(chat4all_connector_breaker_state) == 0", timeout=60, what="the breaker closed again"
    )
    _wait_read(prom, sent)

    # A partition takeover: a second worker (its Cassandra through a proxy) takes half the partitions.
    worker_b = scene.pipeline.worker(
        CHAT4ALL_CASSANDRA_PORT=str(scene.proxy.port), CHAT4ALL_CASSANDRA_RETRY_MAX_SECONDS="1"
    )
    worker_b.wait_ready()
    worker_a.wait_ready()
    prom.wait_for_series(
        f'up{{job="chat4all-worker", instance="{_target_of(worker_b)}"}} == 1',
        timeout=30,
        what="the second worker scraped",
    )
    sent += _send(api, alice, conversations, 16, prefix="shared")
    _wait_read(prom, sent)
    # Each partition's lag comes from the one worker that owns it: the other dropped its series.
    prom.wait_for_series(
        f'count(chat4all_consumer_lag{{instance="{_target_of(worker_b)}"}}) > 0',
        timeout=30,
        what="lag reported by the second worker",
    )
    time.sleep(7)  # one more lag refresh (5 s) of both workers, and its scrape
    deadline = time.monotonic() + 15
    while doubled := prom.query("count by (topic, partition) (chat4all_consumer_lag) > 1"):
        assert time.monotonic() < deadline, f"lag series reported by two workers: {doubled}"
        time.sleep(1)

    # Cassandra cut off from the second worker: it retries its writes and reports the dependency down.
    # (Never restored: a port of the ephemeral range left unbound can be taken by a reconnecting
    # client's own source port. The worker is SIGKILLed later on.)
    scene.proxy.cut()
    _send(api, alice, conversations, 16, prefix="cut")
    scene.see_alert("Chat4AllCassandraUnhealthy", timeout=60)
    prom.wait_for_series("sum(chat4all_cassandra_retries_total) > 0", timeout=30, what="Cassandra retries")

    time.sleep(3)  # a few more scrapes of the final counters, so every rate() has two samples
    for title, expr in dashboard_exprs():
        scene.panels_seen[f"{title}: {expr}"] = prom.query(expr)

    # A hung worker and a hung API (alive, so their targets stay): their scrapes fail.
    for process, alert in ((worker_b.proc, "Chat4AllWorkerDown"), (api.server.proc, "Chat4AllApiDown")):
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        try:
            scene.see_alert(alert, timeout=20)
        finally:
            os.kill(process.pid, signal.SIGCONT)


def _wait_read(prom: PrometheusProcess, count: int) -> None:
    prom.wait_for_series(
        f'sum(chat4all_status_latency_seconds_count{{status="READ"}}) >= {count}',
        timeout=90,
        what=f"{count} READ receipts",
    )


def test_every_dashboard_panel_query_returns_series_of_its_own(scenario: Scenario) -> None:
    empty = [name for name, result in scenario.panels_seen.items() if not result]
    assert len(scenario.panels_seen) == len(dashboard_exprs())
    assert not empty, f"panels without data: {empty}"
    for name in scenario.panels_seen:
        assert "vector(" not in name, f"a padded query: {name}"


def test_every_alert_expression_returned_series_while_its_condition_held(scenario: Scenario) -> None:
    assert set(scenario.alerts_seen) == set(alert_exprs())
    assert all("vector(" not in expr for expr in alert_exprs().values())
    [down] = scenario.alerts_seen["Chat4AllWorkerDown"]
    assert down["metric"]["instance"] == _target_of(scenario.pipeline.workers[1])
    [api_down] = scenario.alerts_seen["Chat4AllApiDown"]
    assert api_down["metric"]["instance"] == f"127.0.0.1:{scenario.api.server.metrics_port}"
    [cassandra] = scenario.alerts_seen["Chat4AllCassandraUnhealthy"]
    assert cassandra["metric"]["instance"] == _target_of(scenario.pipeline.workers[1])
    breaker = {s["metric"]["channel"] for s in scenario.alerts_seen["Chat4AllBreakerOpen"]}
    assert "whatsapp" in breaker
    lagging = {s["metric"]["topic"] for s in scenario.alerts_seen["Chat4AllConsumerLagGrowing"]}
    assert scenario.pipeline.topic("whatsapp-outbound") in lagging
    [dead] = scenario.alerts_seen["Chat4AllDeadLettersIncreasing"]
    assert dead["metric"] == {"source": "router", "reason": "conversation not found"}


def test_the_rules_are_loaded_and_healthy(scenario: Scenario) -> None:
    rules = scenario.prometheus.rules()
    assert {r["name"] for r in rules} == set(alert_exprs())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_a_sigkilled_worker_leaves_no_target_behind(scenario: Scenario) -> None:
    prom, worker_b = scenario.prometheus, scenario.pipeline.workers[1]
    target = _target_of(worker_b)
    files = list(prom.targets_dir.glob(f"chat4all-worker-*-{worker_b.proc.pid}.json"))  # type: ignore[union-attr]
    assert len(files) == 1
    worker_b.kill()
    deadline = time.monotonic() + 20
    while files[0].exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not files[0].exists(), "the killed worker's target file was not pruned"
    deadline = time.monotonic() + 20
    while any(t["labels"]["instance"] == target for t in prom.active_targets()):
        assert time.monotonic() < deadline, "Prometheus still scrapes the killed worker"
        time.sleep(0.5)
    time.sleep(2)
    assert not prom.query(f'up{{instance="{target}"}}'), "the killed worker's up series is not stale"
    assert not [
        s for s in prom.query(alert_exprs()["Chat4AllWorkerDown"]) if s["metric"]["instance"] == target
    ]


def test_a_stopped_api_and_worker_unregister(scenario: Scenario) -> None:
    targets_dir: Path = scenario.prometheus.targets_dir
    api_file = list(targets_dir.glob(f"chat4all-api-*-{scenario.api.server.proc.pid}.json"))
    worker = scenario.worker_a
    worker_file = list(targets_dir.glob(f"chat4all-worker-*-{worker.proc.pid}.json"))  # type: ignore[union-attr]
    assert len(api_file) == 1 and len(worker_file) == 1
    scenario.api.server.stop()
    worker.stop()
    assert not api_file[0].exists() and not worker_file[0].exists()
    assert list(targets_dir.glob("*.json")) == []
