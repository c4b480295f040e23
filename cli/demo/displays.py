"""Rich renderables of the platform's state: the group's assignment, one message's receipts, the breakers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.table import Table
from rich.text import Text

from cli.demo.group import GroupAssignment, partition_ranges
from cli.demo.ledger import StoredMessage

STATUS_STYLE = {"SENT": "yellow", "DELIVERED": "cyan", "READ": "bold green", "FAILED": "bold red"}
BREAKER_STYLE = {"CLOSED": "green", "HALF_OPEN": "yellow", "OPEN": "bold red"}
PROGRESS = ("SENT", "DELIVERED", "READ")


def _short_topic(topic: str, prefix: str) -> str:
    name = topic.removeprefix(prefix).removesuffix("-outbound")
    return "status" if name == "status-updates" else name


def assignment_table(
    assignment: GroupAssignment, *, topics: list[str], prefix: str, names: dict[str, str], title: str
) -> Table:
    """One row per worker: its active partitions of each topic and how many standby partitions it keeps."""
    table = Table(
        title=f"{title}: active partitions per topic (group {assignment.group}, {assignment.state})",
        title_justify="left",
        caption="status = status-updates; whatsapp, instagram, native = <channel>-outbound",
        caption_justify="left",
    )
    table.add_column("worker")
    for topic in topics:
        table.add_column(_short_topic(topic, prefix), justify="right")
    table.add_column("standby", justify="right")
    for member in sorted(assignment.members, key=lambda m: names.get(m.url, m.url)):
        label = f"{names.get(member.url, '?')} :{member.url.rsplit(':', 1)[-1]}"
        standby = sum(len(p) for p in member.standbys.values())
        table.add_row(label, *(partition_ranges(member.active(t)) for t in topics), str(standby))
    return table


def _when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%H:%M:%S.%f")[:-3]
    return str(value)


def receipts_table(message: StoredMessage | None, *, people: dict[str, str], title: str) -> Table:
    """One row per recipient and channel: SENT -> DELIVERED -> READ with the current step lit, and the times.

    ``people`` maps user ids to the names the narration uses.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("receipt")
    table.add_column("progress")
    table.add_column("delivered at")
    table.add_column("read at")
    if message is None:
        table.add_row("(not stored yet: the router has not written the row)", "", "", "")
        return table
    for key, status in sorted(message.receipts.items()):
        progress = Text()
        reached = PROGRESS.index(status) if status in PROGRESS else -1
        for i, step in enumerate(PROGRESS):
            if i:
                progress.append(" → ", style="dim")
            progress.append(step, style=STATUS_STYLE[step] if i <= reached else "dim")
        if status == "FAILED":
            progress = Text("FAILED", style=STATUS_STYLE["FAILED"])
        table.add_row(key, progress, _when(message.delivered_at.get(key)), _when(message.read_at.get(key)))
    return table


def counts_table(counts: dict[str, dict[str, int]], *, title: str) -> Table:
    """Rows of labelled counters, e.g. messages per aggregate status for each batch."""
    columns = sorted({k for row in counts.values() for k in row}, key=lambda s: (s not in STATUS_STYLE, s))
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for c in columns:
        table.add_column(Text(c, style=STATUS_STYLE.get(c, "")), justify="right")
    for label, row in counts.items():
        table.add_row(label, *(str(row.get(c, 0)) for c in columns))
    return table


def breakers_table(states: dict[str, dict[str, Any]], *, channel: str, title: str) -> Table:
    """One row per worker: the channel's breaker state, times opened, and its recent transitions."""
    table = Table(title=title, title_justify="left")
    table.add_column("worker")
    table.add_column(f"{channel} breaker")
    table.add_column("opened")
    table.add_column("transitions (oldest first)")
    for worker, page in states.items():
        state = page["channels"][channel]
        trail = Text()
        for i, t in enumerate(state.get("transitions", [])[-8:]):
            if i:
                trail.append(" → ", style="dim")
            trail.append(t["state"], style=BREAKER_STYLE.get(t["state"], ""))
        table.add_row(
            worker,
            Text(state["breaker"], style=BREAKER_STYLE.get(state["breaker"], "")),
            str(state["opened_count"]),
            trail,
        )
    return table
