"""What every step of the demo works with: settings, pace, narrator, platform, the cast and the message ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chat4all.settings import Settings
from cli.demo.cast import Cast, Person
from cli.demo.checkpoints import StepResult
from cli.demo.displays import assignment_table
from cli.demo.group import GroupAssignment, key_partition, read_assignment, source_topics
from cli.demo.ledger import MessageLedger
from cli.demo.narration import Narrator
from cli.demo.pace import Pace
from cli.demo.platform import Platform
from cli.demo.polling import poll

# Rooms made at most to find one in a given set of partitions (each lands in half of them, typically).
_EXTRA_ROOMS = 24


@dataclass(kw_only=True)
class DemoContext:
    """The demo's shared state; steps add to it (the people, the conversations) as they go."""

    settings: Settings
    pace: Pace
    narrator: Narrator
    platform: Platform
    cast: Cast
    ledger: MessageLedger
    rooms: list[str] = field(default_factory=list)

    def inspector(self, path: str, *, worker: str = "A") -> str:
        """The URL of an inspector page (``/ui/...``) on a worker's web server (A's by default)."""
        return self.platform.workers[worker].url + path

    def show_assignment(self, assignment: GroupAssignment, *, title: str) -> None:
        """Print the group's assignment over the source topics, workers by their demo names."""
        self.narrator.show(
            assignment_table(
                assignment,
                topics=source_topics(self.settings),
                prefix=self.settings.topic_prefix,
                names=self.platform.names(),
                title=title,
            )
        )

    def check(self, result: StepResult, name: str, ok: bool, detail: str, **data: Any) -> bool:
        """Record a checkpoint of ``result`` and narrate its verdict; returns ``ok``."""
        self.narrator.checkpoint(result.check(name, ok, detail, **data))
        return bool(ok)

    def person(self, name: str, *, channels: dict[str, str]) -> Person:
        """The person called ``name``, registered through the API the first time it is asked for."""
        if name not in self.cast.people:
            self.narrator.action(f"registering {name} ({', '.join(f'{c} {h}' for c, h in channels.items())})")
            self.cast.register(name, channels=channels)
        return self.cast.people[name]

    def group_rooms(self) -> list[str]:
        """The group conversations of alice, bob and carol the traffic of steps 3-5 spreads over (made once).

        Each conversation's messages go to one partition of ``messages`` (keyed by conversation
        id), so several rooms spread the routing over the workers.
        """
        if not self.rooms:
            alice = self.person("alice", channels={"instagram": "@alice"})
            bob = self.person("bob", channels={"whatsapp": "+5511990000001"})
            carol = self.person("carol", channels={"whatsapp": "+5511990000002"})
            self.narrator.action(f"alice opens {self.pace.rooms} group conversations with bob and carol")
            self.rooms = [
                self.cast.group(alice, [bob, carol], title=f"demo room {n + 1}")
                for n in range(self.pace.rooms)
            ]
        return self.rooms

    def room_in(self, partitions: set[int]) -> str | None:
        """A group room whose conversation lives in one of ``partitions`` of `messages`; more rooms are made if none does.

        Which partitions a handful of rooms hash to is chance: a step that needs traffic
        through a given worker's partitions asks for a room there.
        """
        count = self.settings.topic_partitions
        rooms = self.group_rooms()
        for _ in range(_EXTRA_ROOMS):
            found = next((r for r in rooms if key_partition(r, partitions=count) in partitions), None)
            if found is not None:
                return found
            alice, bob, carol = (self.cast.people[p] for p in ("alice", "bob", "carol"))
            rooms.append(self.cast.group(alice, [bob, carol], title=f"demo room {len(rooms) + 1}"))
        return None

    def stable_assignment(self, *, timeout: float, until: Any = None) -> tuple[GroupAssignment, bool]:
        """The group's assignment once it is stable (and ``until(assignment)`` holds, when given)."""

        def check() -> GroupAssignment | None:
            assignment = read_assignment(self.settings)
            if assignment.stable and (until is None or until(assignment)):
                return assignment
            return None

        found, ok = poll(check, timeout=timeout, interval=0.5)
        return (found if ok else read_assignment(self.settings)), ok
