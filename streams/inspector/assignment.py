"""The consumer group's assignment as faust's assignor shares it: which worker (web URL) owns each partition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yarl import URL


def same_worker(a: str | URL, b: str | URL) -> bool:
    """Whether two web URLs name the same worker (scheme, host and port; a trailing slash ignored)."""
    ua, ub = URL(str(a)), URL(str(b))
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)


@dataclass(frozen=True)
class GroupAssignment:
    """Every worker's active partitions by topic, keyed by the worker's canonical URL.

    The leader of the group hands every member the table changelogs' distribution and the
    other topics' (faust's ``changelog_distribution`` and ``external_topic_distribution``);
    workers of different roles know different tables, so both are merged here.
    """

    self_url: str
    workers: Mapping[str, Mapping[str, list[int]]] = field(default_factory=dict)
    actives: Mapping[str, list[int]] = field(default_factory=dict)
    standbys: Mapping[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, app: Any) -> GroupAssignment:
        """The assignment ``app`` (a faust.App) received at its last rebalance."""
        assignor = app.assignor
        workers: dict[str, dict[str, set[int]]] = {}
        for distribution in (assignor.changelog_distribution, assignor.external_topic_distribution):
            for url, topics in (distribution or {}).items():
                mine = workers.setdefault(str(url), {})
                for topic, partitions in topics.items():
                    mine.setdefault(topic, set()).update(partitions)
        return cls(
            self_url=str(app.conf.canonical_url),
            workers={u: {t: sorted(p) for t, p in sorted(ts.items())} for u, ts in sorted(workers.items())},
            actives=_by_topic(assignor.assigned_actives()),
            standbys=_by_topic(assignor.assigned_standbys()),
        )

    def owner(self, topic: str, partition: int) -> str | None:
        """The URL of the worker whose active partition ``partition`` of ``topic`` is, or None."""
        for url, topics in self.workers.items():
            if partition in topics.get(topic, ()):
                return url
        return None

    def is_self(self, url: str) -> bool:
        """Whether ``url`` is this worker."""
        return same_worker(url, self.self_url)

    def others(self) -> list[str]:
        """The URLs of the group's other workers."""
        return [u for u in self.workers if not self.is_self(u)]


def _by_topic(tps: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for tp in tps:
        out.setdefault(tp.topic, []).append(tp.partition)
    return {t: sorted(p) for t, p in sorted(out.items())}
