"""The inspector on two live workers with real traffic: keys of every table owned by the other worker are answered through routing."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from chat4all.cassandra import connect
from chat4all.settings import Settings
from cli.harness.isolation import IsolatedPipeline
from cli.harness.seeding import message_event, publish_messages, setup_conversations
from cli.harness.waiting import wait_until
from cli.harness.worker_process import WorkerProcess
from streams.inspector.placement import key_partition
from tests.integration.inspector.helpers import get, owner_of, same_assignment

pytestmark = pytest.mark.integration

SCRIPT = "<script>alert('inspector')</script>"
# Receipts slow enough that schedule buckets are still there when the test reads them.
SLOW_READ = {"CHAT4ALL_DELIVERED_DELAY_MS": "[50,150]", "CHAT4ALL_READ_DELAY_MS": "[20000,25000]"}


@pytest.fixture(scope="module")
def two_workers(stack: Settings) -> Iterator[tuple[IsolatedPipeline, WorkerProcess, WorkerProcess]]:
    pipeline = IsolatedPipeline(stack, name="c4a-insp", env=SLOW_READ)
    try:
        first = pipeline.worker(CHAT4ALL_UI_SHOW_CONTENT="true")
        first.wait_ready()
        second = pipeline.worker()
        second.wait_ready()

        wait_until(
            lambda: same_assignment(first, second),
            timeout=90,
            interval=1,
            what="both workers in one assignment",
        )
        yield pipeline, first, second
    finally:
        pipeline.close()


def test_keys_of_every_table_owned_by_the_other_worker_are_answered_by_it(
    stack: Settings, two_workers
) -> None:
    pipeline, first, second = two_workers
    session = connect(stack)
    conversations = setup_conversations(session, 12)
    events = [message_event(c, users[0]) for c, users in conversations.items()]
    publish_messages(stack, events, prefix=pipeline.prefix)
    partitions = stack.topic_partitions

    def delivered_everywhere() -> bool:
        return all(
            get(first, f"/ui/messages/{e['message_id']}")[1].get("state", {}) is not None
            and (get(first, f"/ui/messages/{e['message_id']}")[1].get("state") or {}).get("overall")
            == "DELIVERED"
            for e in events
        )

    wait_until(delivered_everywhere, timeout=60, interval=1, what="every message DELIVERED in the tables")
    checked = {"receipt-states": 0, "router-routed": 0, "whatsapp-schedule": 0}
    for e in events:
        mid, cid = e["message_id"], e["conversation_id"]
        p = key_partition(mid, partitions)
        for table, suffix, part in (
            ("receipt-states", "receipt-states-changelog", p),
            ("router-routed", "router-routed-changelog", key_partition(cid, partitions)),
        ):
            owner = owner_of(first, suffix, part)
            other = first if owner == second.url else second
            status, body = get(other, f"/ui/tables/{table}/{mid}")
            assert status == 200, body
            assert body["found"] is True and body["partition"] == part, body
            assert body["answered_by"] == owner and body["routed_from"] == other.url
            checked[table] += 1
        # The schedule of the message's partition holds its pending READ: ask the non-owner for it.
        owner = owner_of(first, "whatsapp-schedule-changelog", p)
        other = first if owner == second.url else second
        status, body = get(other, f"/ui/tables/whatsapp-schedule?partition={p}&message_id={mid}")
        assert status == 200 and body["answered_by"] == owner and body["routed_from"] == other.url, body
        assert [r["status"] for r in body["pending"]] == ["READ"], body
        key = body["pending"][0]["key"]
        status, entry = get(other, f"/ui/tables/whatsapp-schedule/{key}")
        assert status == 200 and entry["found"] and entry["answered_by"] == owner, entry
        assert mid in [r["message_id"] for r in entry["view"]["receipts"]]
        checked["whatsapp-schedule"] += 1
    # 12 conversations over 12 partitions and two workers: each worker owned some keys of each table.
    assert all(n == len(events) for n in checked.values()), checked


def test_message_page_shows_cassandra_beside_the_tables_and_content_only_where_enabled(
    stack: Settings, two_workers
) -> None:
    pipeline, first, second = two_workers
    session = connect(stack)
    [(cid, users)] = setup_conversations(session, 1).items()
    event = message_event(cid, users[0], content=SCRIPT)
    publish_messages(stack, [event], prefix=pipeline.prefix)
    mid = event["message_id"]

    def delivered() -> Any:
        body = get(second, f"/ui/messages/{mid}")[1]
        return (
            body
            if (body.get("state") or {}).get("overall") == "DELIVERED" and body["cassandra"].get("found")
            else None
        )

    body = wait_until(delivered, timeout=60, interval=1, what="the message DELIVERED")
    assert body["cassandra"]["content_shown"] is False and SCRIPT not in json.dumps(body)
    assert [p["status"] for p in body["pending"]] == ["READ"]
    shown = get(first, f"/ui/messages/{mid}")[1]
    assert shown["cassandra"]["content"] == SCRIPT
    # HTML: the content is text, never markup.
    req = urllib.request.Request(first.url + f"/ui/messages/{mid}", headers={"Accept": "text/html"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        html = resp.read().decode()
    assert SCRIPT not in html and "&lt;script&gt;alert(&#39;inspector&#39;)&lt;/script&gt;" in html


def test_bad_input_is_a_client_error(two_workers) -> None:
    _, first, _ = two_workers
    assert get(first, "/ui/messages/not-a-uuid")[0] == 400
    assert get(first, "/ui/tables/no-such-table")[0] == 404
    assert get(first, "/ui/tables/whatsapp-schedule/b:1")[0] == 404
    assert get(first, "/ui/tables/receipt-states?partition=99")[0] == 400
    assert get(first, "/ui/tables/receipt-states?cursor=zz")[0] == 400


def test_with_the_operator_token_set_every_page_needs_it(stack: Settings, two_workers) -> None:
    pipeline = two_workers[0]
    token = secrets.token_urlsafe(24)
    worker = pipeline.worker(role="router", CHAT4ALL_OPERATOR_TOKEN=token)
    try:
        worker.wait_ready()
        for path in ("/ui/", "/ui/tables/router-routed", f"/ui/messages/{'0' * 8}-0000-0000-0000-{'0' * 12}"):
            assert get(worker, path)[0] == 401
            assert get(worker, path, token="wrong")[0] == 401
            assert get(worker, path, token=token)[0] == 200, path
        assert worker.health() is not None  # /health stays open
        assert token not in worker.log_path.read_text(errors="replace")
    finally:
        worker.stop()
