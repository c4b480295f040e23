"""The inspector in headless Chromium (Debian's chromium and chromium-driver, driven by selenium) against two live workers with real traffic.

Screenshots of the pages are saved under tests/artifacts/inspector/ (git-ignored); the
path is printed. docs/inspector/*.png are copies of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from chat4all.cassandra import connect
from chat4all.settings import REPO_ROOT, Settings
from cli.harness.isolation import IsolatedPipeline
from cli.harness.seeding import message_event, publish_messages, setup_conversations
from cli.harness.waiting import wait_until
from cli.harness.worker_process import WorkerProcess
from cli.stack.chromium import CHROMEDRIVER, CHROMIUM
from streams.inspector.placement import key_partition
from tests.integration.inspector.helpers import get, owner_of, same_assignment

pytestmark = pytest.mark.integration

ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "inspector"
CHANNELS = {"whatsapp": "+5511999990000", "instagram": "@inspector"}
TABLES = ("instagram-schedule", "receipt-finals", "receipt-states", "router-routed", "whatsapp-schedule")
# READs late enough that a page first shows the receipts DELIVERED with their READ pending.
RECEIPTS = {"CHAT4ALL_DELIVERED_DELAY_MS": "[50,150]", "CHAT4ALL_READ_DELAY_MS": "[8000,10000]"}
# Set by the message's content if the page ran it as a script.
INJECTED = "c4aInjected"
SCRIPT = f"<script>window.{INJECTED} = true;</script>"
# "A page never holds the loop for more than a few milliseconds": its longest run on the
# worker's event loop, in CPU time of the loop's thread (Server-Timing "loop"), and that run
# less the garbage collection inside it ("loop-gc": a collection walks the whole process, and
# runs in whichever step allocates past the threshold).
LOOP_HOLD_LIMIT_MS = 20.0
OWN_RUN_LIMIT_MS = 10.0


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium through Debian's chromedriver, at a laptop's window size."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    # Both paths given, so selenium-manager never looks for (or downloads) a browser or driver.
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(ARTIFACTS / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        print(f"\ninspector screenshots: {ARTIFACTS}")


@pytest.fixture(scope="module")
def workers(stack: Settings) -> Iterator[tuple[IsolatedPipeline, WorkerProcess, WorkerProcess]]:
    """Two workers of one isolated pipeline in one settled assignment; the first shows content."""
    pipeline = IsolatedPipeline(stack, name="c4a-browser", env=RECEIPTS)
    try:
        first = pipeline.worker(CHAT4ALL_UI_SHOW_CONTENT="true")
        first.wait_ready()
        second = pipeline.worker()
        second.wait_ready()
        wait_until(lambda: same_assignment(first, second), timeout=90, interval=1, what="one assignment")
        yield pipeline, first, second
    finally:
        pipeline.close()


@pytest.fixture(scope="module")
def traffic(stack: Settings, workers) -> list[dict[str, Any]]:
    """Twelve messages on WhatsApp and Instagram, every one DELIVERED in the tables with its READs pending."""
    pipeline, first, _ = workers
    conversations = setup_conversations(connect(stack), 12, channels=CHANNELS)
    events = [message_event(c, users[0]) for c, users in conversations.items()]
    publish_messages(stack, events, prefix=pipeline.prefix)

    def delivered() -> bool:
        return all(
            (get(first, f"/ui/messages/{e['message_id']}")[1].get("state") or {}).get("overall")
            == "DELIVERED"
            for e in events
        )

    wait_until(delivered, timeout=60, interval=1, what="every message DELIVERED")
    return events


def until(driver: webdriver.Chrome, check: Callable[[webdriver.Chrome], Any], *, timeout: float = 30) -> Any:
    """Wait for ``check`` on the page, through the page's own reloads (its elements go stale at each)."""
    return WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.3,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(check)


def text(driver: webdriver.Chrome, css: str, *, timeout: float = 30) -> str:
    """The text of the first element at ``css``, once the page shows it."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;"
    return until(driver, lambda d: d.execute_script(script, css), timeout=timeout)


def loop_hold_ms(driver: webdriver.Chrome) -> tuple[float, float]:
    """The page's longest run on the worker's event loop and the collection within it (CPU ms), from Server-Timing."""
    timings = dict(
        driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].serverTiming.map(t => [t.name, t.duration])"
        )
    )
    return timings["loop"], timings["loop-gc"]


def assert_loop_held_briefly(driver: webdriver.Chrome, page: str) -> None:
    """The page now shown held the worker's loop for at most LOOP_HOLD_LIMIT_MS at a time, OWN_RUN_LIMIT_MS of it its own code."""
    held, collecting = loop_hold_ms(driver)
    print(f"loop held by {page}: {held:.2f} ms ({collecting:.2f} ms of it garbage collection)")
    assert 0 < held <= LOOP_HOLD_LIMIT_MS, (page, held)
    assert 0 <= collecting <= held and held - collecting <= OWN_RUN_LIMIT_MS, (page, held, collecting)


def shoot(driver: webdriver.Chrome, name: str, *, at: str | None = None) -> Path:
    """Save what a laptop screen shows (1366x900) as <name>.png and the whole page as <name>-full.png.

    ``at``: the CSS selector of an element to scroll to the top of the screen first.
    """
    path = ARTIFACTS / f"{name}.png"
    # Paused (the page's own Pause), so that no reload comes between the resize and the capture.
    driver.execute_script("localStorage.setItem('c4a-inspector-paused', '1')")
    try:
        if at is not None:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", at)
        driver.save_screenshot(str(path))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1366, min(max(int(height), 900), 6000))
        driver.find_element(By.TAG_NAME, "body").screenshot(str(ARTIFACTS / f"{name}-full.png"))
    finally:
        driver.set_window_size(1366, 900)
        driver.execute_script("localStorage.setItem('c4a-inspector-paused', '0')")
    return path


# One script reads a whole HTML table, so that a reload of the page cannot come between its rows.
_READ_TABLE = """
const table = document.querySelector(arguments[0]);
if (!table) { return null; }
const rows = Array.from(table.querySelectorAll("tr"));
const heads = Array.from(rows[0].querySelectorAll("th")).map(th => th.innerText.trim());
return rows.slice(1).map(r => Object.fromEntries(
    Array.from(r.querySelectorAll("td")).map((td, i) => [heads[i], td.innerText.trim()])));
"""


def html_table(driver: webdriver.Chrome, css: str) -> list[dict[str, str]]:
    """The rows of the HTML table at ``css`` (header -> cell text), waiting for the page to show it."""
    return until(driver, lambda d: d.execute_script(_READ_TABLE, css))


def column(rows: list[dict[str, str]], header: str) -> list[str]:
    """The texts of the column headed ``header``."""
    return [r[header] for r in rows]


def test_the_overview_lists_the_tables_and_their_partitions(browser, workers, traffic) -> None:
    pipeline, first, _ = workers
    overview = get(first, "/ui/")[1]
    browser.get(first.url + "/ui/")
    text(browser, "#workers")
    headings = until(
        browser,
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('main h3 a')).map(a => a.innerText)"
        ),
    )
    assert sorted(headings) == sorted(TABLES) == sorted(t["name"] for t in overview["tables"])
    for t in overview["tables"]:
        rows = html_table(browser, f"table.table-partitions[data-table='{t['name']}']")
        shown = column(rows, "partition")
        assert shown == [str(p["partition"]) for p in t["partitions"]] and shown, t["name"]
        # This worker holds each of its tables' active partitions and the other worker's as standbys.
        assert set(column(rows, "role")) <= {"active", "standby"}
    topics = column(html_table(browser, "#assignment"), "topic")
    assert pipeline.topic("messages") in topics and pipeline.topic("status-updates") in topics
    worker_cells = column(html_table(browser, "#workers"), "worker")
    assert len(worker_cells) == 2 and any("(this worker)" in c for c in worker_cells)
    assert_loop_held_briefly(browser, "/ui/")
    shoot(browser, "overview")


def test_keys_of_every_table_owned_by_the_other_worker_are_answered_through_routing(
    stack: Settings, browser, workers, traffic
) -> None:
    _, first, second = workers
    partitions = stack.topic_partitions

    def owned_by_second(suffix: str, partition_of: Callable[[dict[str, Any]], int]) -> dict[str, Any]:
        for e in traffic:
            if owner_of(first, suffix, partition_of(e)) == second.url:
                return e
        raise AssertionError(f"no message in a partition of {suffix} that the second worker owns")

    def by_message(e: dict[str, Any]) -> int:
        return key_partition(e["message_id"], partitions)

    keys: dict[str, str] = {}
    for channel in ("whatsapp", "instagram"):
        table = f"{channel}-schedule"
        e = owned_by_second(f"{table}-changelog", by_message)
        p = by_message(e)
        status, pending = get(first, f"/ui/tables/{table}?partition={p}&message_id={e['message_id']}")
        assert status == 200 and pending["answered_by"] == second.url, pending
        assert [r["status"] for r in pending["pending"]] == ["READ"], pending
        keys[table] = pending["pending"][0]["key"]
    keys["receipt-states"] = owned_by_second("receipt-states-changelog", by_message)["message_id"]
    keys["router-routed"] = owned_by_second(
        "router-routed-changelog", lambda e: key_partition(e["conversation_id"], partitions)
    )["message_id"]
    settled = owned_by_second("receipt-finals-changelog", by_message)["message_id"]

    def visit(table: str, key: str) -> None:
        browser.get(f"{first.url}/ui/tables/{table}/{key}")
        answered, title, main = (text(browser, css) for css in ("#answered-by", "h1", "main"))
        assert answered == f"answered by {second.url} (routed from {first.url})", (table, answered)
        assert key in title and "Stored value" in main, (table, main)
        assert_loop_held_briefly(browser, f"/ui/tables/{table}/<key>")
        shoot(browser, f"entry-{table}")

    # The schedules' entries first, while their READs are pending.
    for table, key in sorted(keys.items()):
        visit(table, key)
    # receipt-finals holds a message once all its receipts are READ.
    wait_until(
        lambda: get(first, f"/ui/messages/{settled}")[1].get("settled"),
        timeout=60,
        interval=1,
        what="the message settled",
    )
    visit("receipt-finals", settled)
    assert sorted([*keys, "receipt-finals"]) == sorted(TABLES)


def test_a_message_page_shows_its_receipts_reaching_read(stack: Settings, browser, workers) -> None:
    pipeline, first, _ = workers
    [(cid, users)] = setup_conversations(connect(stack), 1, channels=CHANNELS).items()
    event = message_event(cid, users[0])
    publish_messages(stack, [event], prefix=pipeline.prefix)
    browser.get(f"{first.url}/ui/messages/{event['message_id']}")

    def statuses(d: webdriver.Chrome) -> list[str]:
        rows = d.execute_script(_READ_TABLE, "#table-receipts table")
        return column(rows, "status") if rows else []

    # The page reloads itself: nothing here reloads it.
    before = until(browser, lambda d: (s := statuses(d)) and "DELIVERED" in s and s)
    assert "READ" not in before, before
    shoot(browser, "message-delivered")
    after = until(browser, lambda d: (s := statuses(d)) and set(s) == {"READ"} and s, timeout=60)
    assert len(after) == 2, after  # one recipient, two channels
    assert "settled" in text(browser, "main")
    assert text(browser, "#no-divergence").startswith("none")
    nav = browser.execute_script("return performance.getEntriesByType('navigation')[0].type")
    assert nav == "reload", nav
    assert_loop_held_briefly(browser, "/ui/messages/<id>")
    shoot(browser, "message-read")


def test_a_message_whose_content_is_a_script_renders_as_text(stack: Settings, browser, workers) -> None:
    pipeline, first, _ = workers
    [(cid, users)] = setup_conversations(connect(stack), 1, channels=CHANNELS).items()
    event = message_event(cid, users[0], content=SCRIPT)
    publish_messages(stack, [event], prefix=pipeline.prefix)
    browser.get(f"{first.url}/ui/messages/{event['message_id']}")
    content = text(browser, "#content pre", timeout=60)
    assert content == SCRIPT
    assert browser.execute_script(f"return typeof window.{INJECTED}") == "undefined"
    scripts = browser.execute_script("return Array.from(document.scripts).map(s => s.textContent)")
    assert scripts and not any(INJECTED in s for s in scripts), scripts
    shoot(browser, "message-script-content")


def test_the_overview_shows_what_each_partition_has_applied_of_its_changelog(
    browser, workers, traffic
) -> None:
    _, first, _ = workers
    lagging: list[Any] = []

    def caught_up() -> list[dict[str, Any]] | None:
        tables = get(first, "/ui/")[1]["tables"]
        # An active partition holds its changelog's last record; a standby has read it.
        lagging[:] = [
            (t["name"], p)
            for t in tables
            for p in t["partitions"]
            if p["changelog_end"]
            and (p["standby_read_offset"] if p["role"] == "standby" else p["local_offset"])
            != p["changelog_end"] - 1
        ]
        return None if lagging else tables

    # Once the traffic is READ nothing more is written.
    wait_until(
        lambda: all(get(first, f"/ui/messages/{e['message_id']}")[1].get("settled") for e in traffic),
        timeout=60,
        interval=1,
        what="the traffic settled",
    )
    try:
        tables = wait_until(caught_up, timeout=30, interval=1, what="every partition caught up")
    except AssertionError as exc:
        raise AssertionError(f"lagging: {lagging}") from exc
    rows = [p for t in tables for p in t["partitions"]]
    roles = {p["role"] for p in rows}
    assert roles == {"active", "standby"}, roles
    for p in rows:
        if p["role"] == "active" or not p["changelog_end"]:
            assert p["behind"] == 0, p
        else:  # faust writes a standby's records in batches of 1,000: these few are still buffered
            applied = -1 if p["local_offset"] is None else p["local_offset"]
            assert p["behind"] == p["changelog_end"] - 1 - applied <= 1000, p
    assert all(p["local_offset"] is None for p in rows if p["changelog_end"] == 0)
    browser.get(first.url + "/ui/")
    for t in tables:
        shown = html_table(browser, f"table.table-partitions[data-table='{t['name']}']")
        assert column(shown, "behind") == [str(p["behind"]) for p in t["partitions"]], t["name"]
        assert column(shown, "local offset") == [
            "none" if p["local_offset"] is None else str(p["local_offset"]) for p in t["partitions"]
        ]
        assert column(shown, "standby read") == [
            str(p["standby_read_offset"])
            if p["standby_read_offset"] is not None
            else ("none" if p["role"] == "standby" else "")
            for p in t["partitions"]
        ]
    shoot(browser, "overview-tables", at=".grid")
